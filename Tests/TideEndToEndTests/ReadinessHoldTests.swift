import Foundation
import Testing
import TideGit
import TideTestSupport

/// `/readyz` tells the truth about a service that cannot do its job: passes that cannot run, a head that no
/// longer verifies (hardening round two, 13; addendum, 3). Through a real `tide run`.
@Suite("tide run: /readyz says which revision is held and why, and when passes cannot run")
struct ReadinessHoldTests {
    /// Polls `/readyz` until `accept` holds (the daemon passes every second).
    static func readiness(
        _ daemon: TideDaemon, timeout: Double = 30, until accept: (TideDaemon.Response) -> Bool
    ) async throws -> TideDaemon.Response {
        let deadline = Date().addingTimeInterval(timeout)
        var last = try await daemon.get("/readyz")
        while !accept(last), Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
            last = try await daemon.get("/readyz")
        }
        return last
    }

    @Test("the signing key removed from the allowed signers: not ready, nothing applied, and the metrics say so")
    func keyRemoved() async throws {
        let repo = try await detached { try ConfigRepo() }
        let keys = try SigningKeys(in: repo.scratch)
        try keys.commitSigned(repo.fixture, "api 1.0.1 signed", files: ["api.yaml": ConfigRepo.service("api", "1.0.1")])
        let daemon = try await TideDaemon(
            [
                "--repo", repo.fixture.workTree, "--state", repo.state, "--interval", "1s",
                "--verify-commits", "ssh", "--allowed-signers", keys.allowedSigners,
            ], in: repo.scratch.path, logDirectory: repo.scratch.path)
        let ready = try await Self.readiness(daemon) { $0.status == 200 }
        #expect(ready.status == 200 && ready.body.hasPrefix("ready: revision "), "\(ready.body)")

        // The operator removes the key: the head no longer verifies, and neither does anything earlier.
        try "".write(toFile: keys.allowedSigners, atomically: true, encoding: .utf8)
        let held = try await Self.readiness(daemon) { $0.status == 503 }
        #expect(held.status == 503, "\(held.body)")
        #expect(held.body.contains("nothing is applied"), "\(held.body)")
        #expect(held.body.contains("is rejected"), "\(held.body)")
        let metrics = try await daemon.get("/metrics")
        #expect(metrics.body.contains("tide_head_rejected 1"), "\(metrics.body)")
        let status = try await repo.tide("status")
        #expect(status.standardOutput.contains("signed by a key not in"), "\(status.combined)")
        #expect(await daemon.stop() == 0)
    }

    @Test("passes that cannot run (the config repo gone) make the service not ready, with the error")
    func passesFail() async throws {
        let repo = try await detached { try ConfigRepo() }
        let daemon = try await TideDaemon(
            ["--repo", repo.fixture.workTree, "--state", repo.state, "--interval", "1s"], in: repo.scratch.path,
            logDirectory: repo.scratch.path)
        #expect(try await Self.readiness(daemon) { $0.status == 200 }.status == 200)
        try FileManager.default.moveItem(
            atPath: repo.fixture.workTree + "/.git", toPath: repo.fixture.workTree + "/.git-gone")
        let failing = try await Self.readiness(daemon) { $0.status == 503 }
        #expect(failing.status == 503, "\(failing.body)")
        #expect(failing.body.contains("passes could not run"), "\(failing.body)")
        try FileManager.default.moveItem(
            atPath: repo.fixture.workTree + "/.git-gone", toPath: repo.fixture.workTree + "/.git")
        #expect(try await Self.readiness(daemon) { $0.status == 200 }.status == 200, "ready again once passes run")
        #expect(await daemon.stop() == 0)
    }
}
