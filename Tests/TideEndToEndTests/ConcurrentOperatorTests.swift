import Foundation
import Testing
import TideGit
import TideTestSupport

/// People at once: two operators typing verbs at the same moment, and a verb typed while a long pass runs.
@Suite("End to end: operators at once, and during a long pass")
struct ConcurrentOperatorTests {
    @Test("two operators at once: each request is carried out once and each gets its answer")
    func twoOperatorsAtOnce() async throws {
        let remote = try await detached { try ServiceTests.Remote() }
        let daemon = try await remote.daemon(["--interval", "1h"])
        #expect(await daemon.waitForLog("info pass "), "\(daemon.log())")
        async let first = remote.repo.tide(
            "approve", "api", "--env", "prod", "--comment", "one", extra: ["--repo", remote.url])
        async let second = remote.repo.tide(
            "approve", "web", "--env", "prod", "--comment", "two", extra: ["--repo", remote.url])
        let (a, b) = try await (first, second)
        #expect(a.status == 0 && a.standardOutput.contains("approved api 1.0.0"), "\(a.combined)")
        #expect(b.status == 0 && b.standardOutput.contains("approved web 1.0.0"), "\(b.combined)")
        let history = try await remote.repo.tide("history", "--json", extra: ["--repo", remote.url])
        let approvals = (try remote.repo.json(history) as? [[String: Any]])?.filter {
            $0["kind"] as? String == "approval.granted"
        }
        #expect(approvals?.count == 2, "\(history.standardOutput)")
        #expect(daemon.log().components(separatedBy: "verb=approve").count - 1 == 2, "\(daemon.log())")
        #expect(await daemon.stop() == 0)
    }

    @Test("a verb typed during a long pass: approve answers at once, pause is carried out when the step returns")
    func verbDuringALongPass() async throws {
        let remote = try await detached { try ServiceTests.Remote() }
        let daemon = try await remote.daemon(["--interval", "1h"])
        #expect(await daemon.waitForLog("info pass "), "\(daemon.log())")
        // A canary whose set-weight holds until the test releases it.
        let canary = ConfigRepo.service("api", "2.0.0").replacingOccurrences(
            of: "  executor: script\n",
            with:
                "  executor: script\n  strategy: {type: canary, steps: [{setWeight: 20}, {pause: {}}, {setWeight: 60}]}\n"
        )
        _ = FileManager.default.createFile(atPath: remote.repo.log + ".hold-weights", contents: nil)
        try await remote.repo.fixture.commit("api 2.0.0", files: ["api.yaml": canary])
        let signed = await ServiceTests.signed(#"{"ref": "refs/heads/main"}"#)
        _ = try await daemon.request(
            "POST", "/hooks/generic", headers: signed, body: Array(#"{"ref": "refs/heads/main"}"#.utf8))
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && !remote.repo.calls().contains("set-weight api@prod 2.0.0") {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(remote.repo.calls().contains("set-weight api@prod 2.0.0"), "\(remote.repo.calls())")

        let start = ContinuousClock.now
        let approve = try await remote.repo.tide("approve", "web", "--env", "prod", extra: ["--repo", remote.url])
        #expect(approve.status == 0, "\(approve.combined)")
        #expect(ContinuousClock.now - start < .seconds(5), "an approval waited for the pass")

        async let pause = remote.repo.tide("pause", "api", "--env", "prod", extra: ["--repo", remote.url])
        try await Task.sleep(for: .seconds(1))
        _ = FileManager.default.createFile(atPath: remote.repo.log + ".release", contents: nil)
        let paused = try await pause
        #expect(paused.status == 0 && paused.standardOutput.contains("api@prod: paused"), "\(paused.combined)")
        let status = try await remote.repo.tide("status", "--json", extra: ["--repo", remote.url])
        let api = ((try remote.repo.json(status) as? [String: Any])?["targets"] as? [[String: Any]])?.first {
            $0["service"] as? String == "api"
        }
        #expect((api?["rollout"] as? [String: Any])?["paused"] as? Bool == true, "\(status.standardOutput)")
        #expect(await daemon.stop() == 0)
    }
}
