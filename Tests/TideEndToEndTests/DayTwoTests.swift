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
