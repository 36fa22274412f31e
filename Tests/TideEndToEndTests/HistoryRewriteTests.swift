import Foundation
import Testing
import TideGit
import TideTestSupport

/// History Tide cannot walk: the live revision rewritten away and garbage-collected, and shallow clones. Passes
/// go on; classification and lead time fall back, and say so.
@Suite("End to end: rewritten history and shallow clones")
struct HistoryRewriteTests {
    @Test("the live revision's commit is gone (force-pushed squash, gc): the next pass deploys and says why")
    func rewritten() async throws {
        let repo = try ConfigRepo()
        #expect(try await repo.tide("reconcile").status == 0)
        let live = try await repo.fixture.commit("api 1.1.0", files: ["api.yaml": ConfigRepo.service("api", "1.1.0")])
        #expect(try await repo.tide("reconcile").status == 0)

        // Squash everything into a new root, drop the old branch, and collect the garbage.
        try await repo.fixture.git("checkout", "-q", "--orphan", "squashed")
        try await repo.fixture.git("commit", "-q", "--no-verify", "-m", "squashed history")
        try await repo.fixture.git("branch", "-q", "-D", "main")
        try await repo.fixture.git("branch", "-q", "-m", "main")
        try await repo.fixture.git("reflog", "expire", "--expire=now", "--all")
        try await repo.fixture.git("gc", "-q", "--prune=now")
        #expect(throws: (any Error).self) { try repo.fixture.git("cat-file", "-e", live.hex) }

        try await repo.fixture.commit("api 1.2.0", files: ["api.yaml": ConfigRepo.service("api", "1.2.0")])
        // A head that does not descend from what was applied is held (hardening round two, 7) ...
        let held = try await repo.tide("reconcile")
        #expect(held.combined.contains("does not descend from \(live.short)"), "\(held.combined)")
        #expect(!repo.calls().contains("deploy api@prod 1.2.0"))
        // ... until a person says rewrites are expected.
        let pass = try await repo.tide("reconcile", "--allow-history-rewrite")
        #expect(pass.status == 0, "\(pass.combined)")
        #expect(pass.standardOutput.contains("api@prod: deployed 1.1.0 → 1.2.0"), "\(pass.standardOutput)")
        #expect(pass.standardOutput.contains("history was rewritten"), "\(pass.standardOutput)")
        #expect(repo.calls().contains("deploy api@prod 1.2.0"))
        // Lead time counts the deployed commit, not the whole squashed history; DORA still answers.
        let dora = try await repo.tide("dora", "--json")
        #expect(dora.status == 0, "\(dora.combined)")
        let again = try await repo.tide("reconcile")
        #expect(again.status == 0 && !again.combined.contains("error"), "\(again.combined)")
    }

    @Test("a shallow clone (--depth 1) plans and reconciles, and deploys its next commit")
    func shallow() async throws {
        let repo = try ConfigRepo()
        try await repo.fixture.commit("api 1.1.0", files: ["api.yaml": ConfigRepo.service("api", "1.1.0")])
        let clone = repo.scratch.appending("shallow")
        _ = try await runProcess(
            GitFixture.gitPath, ["clone", "-q", "--depth", "1", "file://" + repo.fixture.workTree, clone])
        #expect(FileManager.default.fileExists(atPath: clone + "/.git/shallow"))
        let state = repo.scratch.appending("shallow.sqlite")
        func tide(_ arguments: String...) async throws -> ProcessOutput {
            try await TideBinary.runDetached(arguments + ["--repo", clone, "--state", state], in: repo.scratch.path)
        }
        let plan = try await tide("plan")
        #expect(plan.status == 0, "\(plan.combined)")
        let first = try await tide("reconcile")
        #expect(first.status == 0, "\(first.combined)")
        #expect(repo.calls().contains("deploy api@prod 1.1.0"))

        try Data(ConfigRepo.service("api", "1.2.0").utf8).write(to: URL(fileURLWithPath: clone + "/api.yaml"))
        for arguments in [
            ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "1.2.0"],
        ] {
            let result = try await runProcess(GitFixture.gitPath, arguments, in: clone)
            #expect(result.status == 0, "\(result.standardError)")
        }
        let second = try await tide("reconcile")
        #expect(second.status == 0, "\(second.combined)")
        #expect(second.standardOutput.contains("api@prod: deployed 1.1.0 → 1.2.0"), "\(second.standardOutput)")
        let status = try await tide("status")
        #expect(status.status == 0, "\(status.combined)")

        // A fresh depth-1 checkout of a later commit with the same state (a CI runner's checkout): what was applied
        // is not in it, so descent cannot be told — and the head is not held for it.
        try await repo.fixture.commit("api 1.3.0", files: ["api.yaml": ConfigRepo.service("api", "1.3.0")])
        let fresh = repo.scratch.appending("fresh")
        _ = try await runProcess(
            GitFixture.gitPath, ["clone", "-q", "--depth", "1", "file://" + repo.fixture.workTree, fresh])
        let third = try await TideBinary.runDetached(
            ["reconcile", "--repo", fresh, "--state", state], in: repo.scratch.path)
        #expect(third.status == 0, "\(third.combined)")
        #expect(third.standardOutput.contains("→ 1.3.0"), "\(third.standardOutput)")
    }

    @Test("switching --branch to a hotfix branch cut from an older commit, and back, is not a history rewrite")
    func branchSwitch() async throws {
        let repo = try ConfigRepo()
        let first = try await repo.fixture.head()
        try await repo.fixture.commit("api 1.1.0", files: ["api.yaml": ConfigRepo.service("api", "1.1.0")])
        #expect(try await repo.tide("reconcile").status == 0)
        try await repo.fixture.git("checkout", "-q", "-b", "hotfix/api", first.hex)
        try await repo.fixture.commit("api 1.0.1", files: ["api.yaml": ConfigRepo.service("api", "1.0.1")])
        let hotfix = try await repo.tide("reconcile", "--branch", "hotfix/api")
        #expect(hotfix.status == 0, "\(hotfix.combined)")
        #expect(hotfix.standardOutput.contains("1.1.0 → 1.0.1"), "\(hotfix.standardOutput)")
        let back = try await repo.tide("reconcile", "--branch", "main")
        #expect(back.status == 0, "\(back.combined)")
        #expect(back.standardOutput.contains("1.0.1 → 1.1.0"), "\(back.standardOutput)")
    }
}
