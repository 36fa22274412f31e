import Foundation
import Testing
import TideTestSupport

@Suite("End to end: tide rollback while git is down")
struct UnpublishedRollbackTests {
    @Test(
        "tide rollback with the remote down rolls back from the local mirror; the revert is pushed when it returns, rebuilt on a moved head, never forced"
    )
    func rollbackWhileGitIsDown() async throws {
        let repo = try ConfigRepo(bare: true)
        let url = "file://" + repo.fixture.repoPath
        let remote = ["--repo", url]
        #expect(try await repo.tide("reconcile", extra: remote).status == 0)
        try await repo.fixture.commit("api 2.0.0", files: ["api.yaml": ConfigRepo.service("api", "2.0.0")])
        #expect(try await repo.tide("reconcile", extra: remote).status == 0)

        // Git goes away.
        let away = repo.fixture.repoPath + ".away"
        try FileManager.default.moveItem(atPath: repo.fixture.repoPath, toPath: away)
        let rollback = try await repo.tide("rollback", "api", "--env", "prod", extra: remote)
        #expect(rollback.status == 0, "\(rollback.combined)")
        #expect(rollback.standardOutput.contains("on the local mirror"), "\(rollback.combined)")
        #expect(rollback.standardError.contains("not pushed yet"), "\(rollback.combined)")
        let status = try await repo.tide("status", extra: remote)
        #expect(status.standardOutput.contains("Unpublished:"), "\(status.combined)")
        let down = try await repo.tide("reconcile", extra: remote)
        #expect(down.standardOutput.contains("api@prod: deployed 2.0.0 → 1.0.0 [ROLLBACK]"), "\(down.combined)")

        // Git comes back, and someone pushed meanwhile.
        try FileManager.default.moveItem(atPath: away, toPath: repo.fixture.repoPath)
        try await repo.fixture.git("pull", "-q", "--rebase", "origin", "main")
        try await repo.fixture.commit(
            "web: a comment",
            files: ["web.yaml": "# owned by the web team\n" + ConfigRepo.service("web", "1.0.0", dependsOn: "[api]")])
        let before = repo.calls().count
        let back = try await repo.tide("reconcile", extra: remote)
        #expect(back.status == 0, "\(back.combined)")
        #expect(!repo.calls().dropFirst(before).contains("deploy api@prod 2.0.0"), "2.0.0 came back: \(repo.calls())")
        let log = try await runProcess(
            GitFixture.gitPath, ["--git-dir", repo.fixture.repoPath, "log", "-4", "--format=%s"]
        ).standardOutput
        #expect(log.hasPrefix("Revert \"api 2.0.0\"\nweb: a comment\napi 2.0.0\n"), "\(log)")
        let body = try await runProcess(
            GitFixture.gitPath, ["--git-dir", repo.fixture.repoPath, "log", "-1", "--format=%B"]
        ).standardOutput
        #expect(body.contains("Tide-Actor: \(NSUserName())"), "\(body)")
        let after = try await repo.tide("status", "--json", extra: remote)
        #expect(((try repo.json(after) as? [String: Any])?["unpublished"] as? [Any])?.isEmpty == true)
        let live = try await repo.tide("status", extra: remote)
        #expect(!live.standardOutput.contains("Unpublished:"), "\(live.combined)")
    }
}
