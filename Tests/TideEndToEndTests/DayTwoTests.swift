import Foundation
import Testing
import TideTestSupport

/// Day-2 operations: backups of a state a service writes, suspending a service, and what status says about both.
@Suite("End to end: day-2 — backups, suspend")
struct DayTwoTests {
    @Test("tide state backup copies a consistent state while tide run writes; tide state check verifies it")
    func backupWhileRunning() async throws {
        let remote = try await detached { try ServiceTests.Remote() }
        let daemon = try await remote.daemon(["--interval", "1s"])
        #expect(await daemon.waitForLog("info pass "), "\(daemon.log())")
        // Writes under way while the copy is taken: new versions keep deploying.
        for version in ["1.1.0", "1.2.0", "1.3.0"] {
            try await remote.repo.fixture.commit(version, files: ["api.yaml": ConfigRepo.service("api", version)])
        }
        let copy = remote.repo.scratch.appending("backup.sqlite")
        let backup = try await remote.repo.tide("state", "backup", copy, extra: ["--repo", remote.url])
        #expect(backup.status == 0, "\(backup.combined)")
        #expect(backup.standardOutput.contains("integrity ok"), "\(backup.combined)")
        let again = try await remote.repo.tide("state", "backup", copy, extra: ["--repo", remote.url])
        #expect(again.status == 1 && again.standardError.contains("exists already"), "\(again.combined)")
        #expect(await daemon.stop() == 0)

        let check = try await TideBinary.runDetached([
            "state", "check", "--json", "--state", copy, "--repo", remote.url,
        ])
        #expect(check.status == 0, "\(check.combined)")
        let result = try #require(
            try JSONSerialization.jsonObject(with: Data(check.standardOutput.utf8)) as? [String: Any])
        #expect(result["integrity"] as? [String] == ["ok"])
        #expect(result["current"] as? Bool == true)
        #expect((result["targets"] as? Int ?? 0) == 2, "\(result)")
        #expect(!FileManager.default.fileExists(atPath: copy + "-wal"), "a backup is one file")
        let status = try await TideBinary.runDetached(["status", "--json", "--state", copy, "--repo", remote.url])
        #expect(status.status == 0, "\(status.combined)")
    }

    @Test("tide suspend leaves a service alone until tide unsuspend, says who everywhere, and skips nothing silently")
    func suspend() async throws {
        let repo = try ConfigRepo()
        #expect(try await repo.tide("reconcile").status == 0)
        let suspended = try await repo.tide("suspend", "api", "--env", "prod", "--comment", "db maintenance")
        #expect(suspended.status == 0, "\(suspended.combined)")
        #expect(suspended.standardOutput.contains("api@prod: suspended"), "\(suspended.combined)")
        try await repo.fixture.commit("api 2.0.0", files: ["api.yaml": ConfigRepo.service("api", "2.0.0")])
        let reconcile = try await repo.tide("reconcile")
        #expect(reconcile.status == 0, "\(reconcile.combined)")
        #expect(reconcile.standardOutput.contains("api@prod: suspended 2.0.0"), "\(reconcile.combined)")
        #expect(!repo.calls().contains("deploy api@prod 2.0.0"))

        let status = try await repo.tide("status", "--json")
        let json = try #require(try repo.json(status) as? [String: Any])
        let api = (json["targets"] as? [[String: Any]])?.first { $0["service"] as? String == "api" }
        #expect(api?["state"] as? String == "suspended")
        #expect(
            (api?["suspended"] as? String)?.contains("suspended by \(NSUserName())") == true,
            "\(String(describing: api))")
        #expect((api?["suspended"] as? String)?.contains("db maintenance") == true)
        let text = try await repo.tide("status")
        #expect(text.standardOutput.contains("suspended by \(NSUserName())"), "\(text.standardOutput)")

        let notSuspended = try await repo.tide("unsuspend", "web", "--env", "prod")
        #expect(notSuspended.status == 1 && notSuspended.standardError.contains("web@prod is not suspended"))
        let unknown = try await repo.tide("suspend", "nosuch")
        #expect(unknown.status == 1 && unknown.standardError.contains("no service 'nosuch'"))

        #expect(try await repo.tide("unsuspend", "api", "--env", "prod").status == 0)
        let resumed = try await repo.tide("reconcile")
        #expect(resumed.standardOutput.contains("api@prod: deployed 1.0.0 → 2.0.0"), "\(resumed.combined)")
        let history = try await repo.tide("history", "--json")
        let kinds = (try repo.json(history) as? [[String: Any]])?.compactMap { $0["kind"] as? String } ?? []
        #expect(kinds.contains("target.suspended") && kinds.contains("target.unsuspended"), "\(kinds)")
    }
}

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

/// The end-to-end tests run Tide under faketime (a chosen wall-clock time, the monotonic clock real): every wait
/// Tide makes — a retry's backoff, an executor's timeout — must end there too.
@Suite("End to end: waits under faketime")
struct FaketimeWaitTests {
    @Test("under faketime, an in-pass retry backoff returns and an executor's timeout fires")
    func waitsEnd() async throws {
        let faketime = "/usr/bin/faketime"
        try #require(FileManager.default.isExecutableFile(atPath: faketime), "faketime is needed: scripts/install-deps")
        let repo = try ConfigRepo()
        // The first deploy of 2.0.0 exits 75 (try again later); the retry, a second later, works.
        let flaky = repo.scratch.appending("flaky.sh")
        try """
        #!/bin/sh
        if [ "$TIDE_ACTION" = deploy ] && [ ! -f "\(repo.scratch.path)/tried" ]; then
          touch "\(repo.scratch.path)/tried"; exit 75
        fi
        exec "\(repo.scratch.appending("executor.sh"))"

        """.write(toFile: flaky, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: flaky)
        let base = try String(contentsOfFile: repo.fixture.workTree + "/base.yaml", encoding: .utf8)
        try await repo.fixture.commit(
            "flaky executor",
            files: [
                "base.yaml": base.replacingOccurrences(of: repo.scratch.appending("executor.sh"), with: flaky)
                    .replacingOccurrences(
                        of: "  timeout: 2s\n", with: "  timeout: 2s\n  retry: {limit: 2, backoff: 1s}\n")
            ])
        // Each run timed from the moment its process starts (a test's thread may come late on a busy machine).
        let run = { (arguments: [String]) async throws -> (ProcessOutput, Double) in
            try await detached {
                let start = Date()
                // Bounded: a wait that never ends fails the test instead of hanging it.
                let output = try runProcess(
                    "/usr/bin/timeout",
                    ["60", faketime, "-f", "@2026-11-02 10:00:00", TideBinary.path] + arguments + [
                        "--repo", repo.fixture.repoPath, "--state", repo.state,
                    ],
                    in: repo.scratch.path, environment: ["FAKETIME_DONT_FAKE_MONOTONIC": "1"])
                return (output, Date().timeIntervalSince(start))
            }
        }
        let (retried, took) = try await run(["reconcile"])
        #expect(retried.status == 0, "\(retried.combined)")
        #expect(repo.calls().filter { $0.hasPrefix("deploy api@prod") }.count == 1, "\(repo.calls())")
        // A backoff that never returned would run into timeout's 60 s.
        #expect(took < 45, "the backoff did not end")

        // An executor that sleeps 30 s against its 2 s timeout is stopped at 2 s.
        try await repo.fixture.commit("slow", files: ["api.yaml": ConfigRepo.service("api", "slow")])
        let (slow, slowTook) = try await run(["reconcile"])
        #expect(slowTook < 25, "the timeout did not fire: \(slow.combined)")
        #expect(slow.combined.contains("timed out after 2s"), "\(slow.combined)")
    }
}
