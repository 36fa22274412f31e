import Foundation
import Testing
import TideTestSupport

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
