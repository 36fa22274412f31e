import Foundation
import Testing
import TideEngine
import TideExecutors
import TideManifest
import TideState
import TideTestSupport

/// The knobs Argo Rollouts users rely on: `abortScaleDownDelay` (how long an aborted candidate keeps running) and
/// `rollbackWindow` (a rollback to a recent release skips the steps).
///
/// What must never happen: an aborted candidate scaled down before stable serves, or never (forgotten after a
/// failed scale-down, a retry or a new rollout); a scale-down that names stable; a fast rollback to a release that
/// did not run here lately; a fast rollback pre-empted by the strategy it skips.
@Suite("TideEngine: abortScaleDownDelay and rollbackWindow")
struct ArgoKnobsTests {
    static func canary(abortScaleDownDelay: String?) -> String {
        "    type: canary\n    steps: [{setWeight: 40}, {pause: {}}, {setWeight: 80}]\n"
            + (abortScaleDownDelay.map { "    abortScaleDownDelay: \($0)\n" } ?? "")
    }

    /// 2.0.0 runs; 2.1.0 is at 40 %, paused; then `tide abort`.
    func aborted(abortScaleDownDelay: String?) async throws -> Harness {
        let h = try Harness()
        let strategy = Self.canary(abortScaleDownDelay: abortScaleDownDelay)
        try await h.fixture.commit(
            "2.0.0", files: ["services/payments.yaml": StrategyTests.service("2.0.0", strategy: strategy)])
        _ = try await h.pass()
        try await h.fixture.commit(
            "2.1.0", files: ["services/payments.yaml": StrategyTests.service("2.1.0", strategy: strategy)])
        _ = try await h.pass()
        #expect(await h.live("payments")?.rollout?.weight == 40)
        h.executor.reset()
        _ = try await h.reconciler.control(.abort, service: "payments", environment: "prod", by: "dana")
        return h
    }

    @Test("abortScaleDownDelay: the rollback keeps the candidate; scale-down of it when the delay ends, not before")
    func scaleDownAfterDelay() async throws {
        let h = try await aborted(abortScaleDownDelay: "2m")
        let rollback = try #require(h.executor.requests.first { $0.action == .rollback })
        #expect(rollback.keepCandidate == true)
        #expect(rollback.environmentVariables["TIDE_KEEP_CANDIDATE"] == "1")
        var live = try #require(await h.live("payments"))
        #expect(live.phase == .rolledBack)
        let kept = try #require(live.keptCandidate)
        #expect(kept.version == "2.1.0")
        let due = try #require(kept.scaleDownAt)
        #expect(abs(due.timeIntervalSince(h.clock.now()) - 120) < 1)

        var report = try await h.pass(at: due - 30)
        #expect(!h.calls(of: "payments").contains { $0.hasPrefix("scale-down") }, "\(h.calls(of: "payments"))")
        #expect(report.outcomes.first { $0.target.service == "payments" }?.nextDue == due, "the loop wakes for it")

        report = try await h.pass(at: due + 1)
        #expect(h.calls(of: "payments") == ["scale-down 2.0.0 100"], "\(h.calls(of: "payments"))")
        let request = try #require(h.executor.requests.first { $0.action == .scaleDown })
        #expect(request.previousVersion == "2.1.0", "the side that goes is the candidate")
        #expect(request.version == "2.0.0", "stable stays")
        live = try #require(await h.live("payments"))
        #expect(live.keptCandidate == nil)
        let events = await h.store.events(EventQuery(service: "payments", limit: 100))
        #expect(events.contains { $0.kind == .candidateScaledDown && $0.previousVersion == "2.1.0" })
        _ = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty, "once: \(h.calls(of: "payments"))")
    }

    @Test("abortScaleDownDelay: 0 keeps the candidate until the next rollout, which scales it down first")
    func keptUntilNextRollout() async throws {
        let h = try await aborted(abortScaleDownDelay: "0s")
        var live = try #require(await h.live("payments"))
        #expect(live.keptCandidate?.version == "2.1.0")
        #expect(live.keptCandidate?.scaleDownAt == nil)
        for _ in 0..<3 {
            _ = try await h.pass()
            #expect(h.calls(of: "payments").isEmpty)
        }
        let strategy = Self.canary(abortScaleDownDelay: "0s")
        try await h.fixture.commit(
            "2.2.0", files: ["services/payments.yaml": StrategyTests.service("2.2.0", strategy: strategy)])
        _ = try await h.pass()
        let calls = h.calls(of: "payments")
        #expect(calls.first == "scale-down 2.0.0 100", "\(calls)")
        #expect(calls.dropFirst().first == "deploy 2.2.0 0", "\(calls)")
        live = try #require(await h.live("payments"))
        #expect(live.keptCandidate == nil)
    }

    @Test("a failed scale-down is tried again later, and the candidate is never forgotten (not by tide retry either)")
    func failedScaleDownRetried() async throws {
        let h = try await aborted(abortScaleDownDelay: "1m")
        h.executor.fail(when: { $0.action == .scaleDown }, with: .exited(1))
        let due = try #require(await h.live("payments")?.keptCandidate?.scaleDownAt)
        let report = try await h.pass(at: due + 1)
        var live = try #require(await h.live("payments"))
        let kept = try #require(live.keptCandidate)
        #expect(kept.attempts == 1)
        let retry = try #require(kept.scaleDownAt)
        #expect(retry > due + 1)
        #expect(report.outcomes.first { $0.target.service == "payments" }?.nextDue == retry)
        // tide retry of 2.1.0 (git still asks for it) keeps the record: its new rollout scales the old one down first.
        _ = try await h.reconciler.control(.retry, service: "payments", environment: "prod", by: "dana")
        live = try #require(await h.live("payments"))
        #expect(live.keptCandidate?.version == "2.1.0")
        h.executor.clearFailures()
        _ = try await h.pass(at: retry - 1)
        #expect(Array(h.calls(of: "payments").prefix(2)) == ["scale-down 2.0.0 100", "deploy 2.1.0 0"])
        live = try #require(await h.live("payments"))
        #expect(live.keptCandidate == nil)
    }

    @Test("without abortScaleDownDelay the candidate goes with the rollback: no keep, no scale-down")
    func withoutDelay() async throws {
        let h = try await aborted(abortScaleDownDelay: nil)
        let rollback = try #require(h.executor.requests.first { $0.action == .rollback })
        #expect(rollback.keepCandidate == nil)
        #expect(rollback.environmentVariables["TIDE_KEEP_CANDIDATE"] == nil)
        #expect(await h.live("payments")?.keptCandidate == nil)
        _ = try await h.pass()
        _ = try await h.pass()
        #expect(!h.calls(of: "payments").contains { $0.hasPrefix("scale-down") })
    }

    @Test("a pre-emption never keeps its candidate (the new rollout replaces it)")
    func preemptionDoesNotKeep() async throws {
        let h = try Harness()
        let strategy = Self.canary(abortScaleDownDelay: "0s")
        try await h.fixture.commit(
            "2.0.0", files: ["services/payments.yaml": StrategyTests.service("2.0.0", strategy: strategy)])
        _ = try await h.pass()
        try await h.fixture.commit(
            "2.1.0", files: ["services/payments.yaml": StrategyTests.service("2.1.0", strategy: strategy)])
        _ = try await h.pass()
        try await h.fixture.commit(
            "2.2.0", files: ["services/payments.yaml": StrategyTests.service("2.2.0", strategy: strategy)])
        _ = try await h.pass()
        let rollback = try #require(h.executor.requests.first { $0.action == .rollback })
        #expect(rollback.keepCandidate == nil)
        #expect(await h.live("payments")?.keptCandidate == nil)
    }

    static func windowed(_ version: String, revisions: Int?) -> String {
        let strategy = "    type: canary\n    steps: [{setWeight: 20}, {analysis: errors}, {setWeight: 60}]\n"
        var text = StrategyTests.service(version, strategy: strategy)
        if let revisions {
            text = text.replacingOccurrences(
                of: "  executor: local\n", with: "  executor: local\n  rollbackWindow: {revisions: \(revisions)}\n")
        }
        return text
    }

    /// Rolls `versions` out one after another, each through its whole canary.
    func walk(_ versions: [String], revisions: Int?) async throws -> Harness {
        let h = try Harness()
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        for version in versions {
            try await h.fixture.commit(
                version,
                files: [
                    "services/payments.yaml": Self.windowed(version, revisions: revisions),
                    "tide/analysis.yaml": StrategyTests.analysis,
                ])
            for _ in 0..<8 {
                let live = await h.live("payments")
                if live?.phase == .healthy && live?.version == version { break }
                _ = try await h.pass()
            }
            #expect(await h.live("payments")?.version == version)
            #expect(await h.live("payments")?.phase == .healthy)
        }
        return h
    }

    @Test("rollbackWindow: back to a release of the window goes straight to 100 %, without steps or analyses")
    func fastRollback() async throws {
        let h = try await walk(["2.0.0", "2.1.0"], revisions: 2)
        try await h.fixture.commit("back", files: ["services/payments.yaml": Self.windowed("2.0.0", revisions: 2)])
        let report = try await h.pass()
        let outcome = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(outcome.classification == .rollback)
        #expect(h.calls(of: "payments") == ["deploy 2.0.0 100", "health 2.0.0 100"], "\(h.calls(of: "payments"))")
        #expect(h.executor.requests.first?.strategy == "recreate")
        let live = try #require(await h.live("payments"))
        #expect(live.phase == .healthy)
        #expect(live.version == "2.0.0")
    }

    @Test("rollbackWindow: a release older than the window, or no window, runs the whole strategy")
    func outsideWindow() async throws {
        let h = try await walk(["2.0.0", "2.1.0", "2.2.0"], revisions: 1)
        try await h.fixture.commit("back", files: ["services/payments.yaml": Self.windowed("2.0.0", revisions: 1)])
        _ = try await h.pass()
        #expect(h.calls(of: "payments").first == "deploy 2.0.0 0", "\(h.calls(of: "payments"))")
        #expect(h.calls(of: "payments").contains("set-weight 2.0.0 20"))

        let plain = try await walk(["2.0.0", "2.1.0"], revisions: nil)
        try await plain.fixture.commit(
            "back", files: ["services/payments.yaml": Self.windowed("2.0.0", revisions: nil)])
        _ = try await plain.pass()
        #expect(plain.calls(of: "payments").contains("set-weight 2.0.0 20"), "\(plain.calls(of: "payments"))")
    }

    @Test("a fast rollback is not pre-empted by the steps it skips")
    func fastRollbackNotPreempted() async throws {
        let h = try await walk(["2.0.0", "2.1.0"], revisions: 3)
        h.executor.fail(when: { $0.action == .health && $0.version == "2.0.0" }, with: .exited(75))
        try await h.fixture.commit("back", files: ["services/payments.yaml": Self.windowed("2.0.0", revisions: 3)])
        _ = try await h.pass()
        var live = try #require(await h.live("payments"))
        #expect(live.rollout?.plan?.fastRollback == true)
        h.executor.clearFailures()
        _ = try await h.pass(at: (live.rollout?.retryAt ?? h.clock.now()) + 1)
        #expect(!h.calls(of: "payments").contains { $0.hasPrefix("rollback") }, "\(h.calls(of: "payments"))")
        live = try #require(await h.live("payments"))
        #expect(live.version == "2.0.0")
        #expect(live.phase == .healthy)
    }
}
