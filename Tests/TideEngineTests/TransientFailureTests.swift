import Foundation
import Synchronization
import Testing
import TideEngine
import TideExecutors
import TideManifest
import TideState
import TideTestSupport

/// Transient failures (EX_TEMPFAIL, timeouts, refused connections) are retried with the same action id, then the
/// target waits instead of failing; a rollout that stays stuck past its progress deadline is aborted to stable.
@Suite("TideEngine: transient failures, retries and the progress deadline")
struct TransientFailureTests {
    let strategies = StrategyTests()
    static let canary = "    type: canary\n    steps: [{setWeight: 10}, {setWeight: 50}]\n"

    /// Fails the first `count` set-weight calls with exit code `code`.
    final class Flaky: Sendable {
        let remaining: Mutex<Int>
        init(_ count: Int) { remaining = Mutex(count) }
        func take() -> Bool {
            remaining.withLock { left in
                left > 0
                    ? ({
                        left -= 1; return true
                    })() : false
            }
        }
    }

    func started(extra spec: String) async throws -> EngineHarness<InMemoryStateStore> {
        let h = try await strategies.started(Self.canary)
        let yaml = StrategyTests.service("2.1.0", strategy: Self.canary).replacingOccurrences(
            of: "  executor: local\n", with: "  executor: local\n" + spec)
        try await h.fixture.commit("2.1.0 with settings", files: ["services/payments.yaml": yaml])
        return h
    }

    @Test("exit 75 twice: retried in the same pass with the same TIDE_ACTION_ID, and the rollout goes on")
    func retriedThenPasses() async throws {
        let h = try await started(extra: "  retry: {limit: 3, backoff: 2s, factor: 2}\n")
        let flaky = Flaky(2)
        h.executor.fail(when: { $0.action == .setWeight && flaky.take() }, with: .exited(75))
        let before = h.clock.now()
        let report = try await h.pass()
        let weights = h.executor.requests.filter { $0.action == .setWeight }
        #expect(weights.map(\.weight) == [10, 10, 10, 50])
        #expect(Set(weights.prefix(3).map(\.actionID)).count == 1, "one step, one id, however often it is tried")
        #expect(report.outcomes.first?.result == .deployed)
        // The backoff was waited (2 s, then 4 s), on the harness' clock.
        #expect(h.clock.now().timeIntervalSince(before) >= 60 + 6)
        let succeeded = await h.store.events(EventQuery(kinds: [.stepSucceeded], limit: 100))
        #expect(
            succeeded.contains {
                if case .object(let details)? = $0.details { details["attempts"] == .int(3) } else { false }
            })
    }

    @Test("a transient failure that persists: the target waits (no rollback), backs off, and retries the same step")
    func persistentTransient() async throws {
        let h = try await started(extra: "  retry: {limit: 1, backoff: 10s, factor: 3}\n")
        h.executor.fail(when: { $0.action == .setWeight }, with: .exited(75))
        var report = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 10", "set-weight 2.1.0 10",
            ])
        let live = try #require(await h.live("payments"))
        #expect(live.phase == .progressing, "a transient failure fails nothing")
        #expect(live.rollout?.transientFailures == 1)
        let due = try #require(report.outcomes.first?.nextDue)
        #expect(report.outcomes.first?.message?.contains("tries again at") == true)
        let retrying = await h.store.events(EventQuery(kinds: [.stepRetrying], limit: 10))
        #expect(retrying.count == 1)
        // Before the announced time: nothing is called.
        h.clock.set(due.addingTimeInterval(-61))
        report = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty)
        // After it: the same step, the same id; once the platform is back, the rollout goes on.
        let firstID = try #require(
            live.rollout.map {
                ActionID(TargetID(service: "payments", environment: "prod"), $0, step: .rollout(index: 2, .setWeight))
                    .description
            })
        h.executor.clearFailures()
        h.clock.set(due)
        report = try await h.pass()
        let calls = h.executor.requests.filter { $0.action == .setWeight }
        #expect(calls.first?.actionID == firstID)
        #expect(report.outcomes.first?.result == .deployed)
    }

    @Test("a permanent failure is not retried: exit 1 fails the step at once and rolls back")
    func permanentNotRetried() async throws {
        let h = try await started(extra: "  retry: {limit: 3, backoff: 1s}\n")
        h.executor.fail(when: { $0.action == .setWeight }, with: .exited(1))
        _ = try await h.pass()
        #expect(h.calls(of: "payments").filter { $0.hasPrefix("set-weight") }.count == 1)
        #expect(await h.live("payments")?.phase == .rolledBack)
    }

    @Test("stuck past progressDeadline: the rollout is aborted to stable with the reason")
    func progressDeadline() async throws {
        let h = try await started(extra: "  retry: {limit: 0, backoff: 1m}\n  progressDeadline: 10m\n")
        h.executor.fail(when: { $0.action == .setWeight }, with: .timedOut(seconds: 30))
        _ = try await h.pass()
        #expect(await h.live("payments")?.phase == .progressing)
        h.clock.advance(by: 300)
        _ = try await h.pass()
        #expect(await h.live("payments")?.phase == .progressing, "5 minutes: within the deadline")
        h.clock.advance(by: 360)
        let report = try await h.pass()
        #expect(h.calls(of: "payments").suffix(2) == ["rollback 2.0.0 100", "health 2.0.0 100"])
        #expect(report.outcomes.first?.message?.contains("no progress for 10m") == true)
        #expect(report.outcomes.first?.message?.contains("set-weight timed out") == true)
        #expect(await h.live("payments")?.phase == .rolledBack)
    }

    @Test("time waiting for a person never counts toward the deadline, with or without progressDeadlineAbort")
    func openPauseExempt() async throws {
        let pause = "    type: canary\n    steps: [{setWeight: 10}, {pause: {}}]\n"
        for abort in [false, true] {
            let h = try await strategies.started(pause)
            let yaml = StrategyTests.service("2.1.0", strategy: pause).replacingOccurrences(
                of: "  executor: local\n",
                with: "  executor: local\n  progressDeadline: 10m\n  progressDeadlineAbort: \(abort)\n")
            try await h.fixture.commit("settings", files: ["services/payments.yaml": yaml])
            _ = try await h.pass()
            h.clock.advance(by: 3600)
            _ = try await h.pass()
            #expect(await h.live("payments")?.phase == .progressing, "abort: \(abort)")
        }
    }

    @Test("progressDeadlineAbort: false marks a stalled rollout stuck and keeps trying instead of aborting it")
    func stuckWithoutAbort() async throws {
        let h = try await started(
            extra: "  retry: {limit: 0, backoff: 1m}\n  progressDeadline: 10m\n  progressDeadlineAbort: false\n")
        h.executor.fail(when: { $0.action == .setWeight }, with: .timedOut(seconds: 30))
        _ = try await h.pass()
        h.clock.advance(by: 700)
        let report = try await h.pass()
        let live = try #require(await h.live("payments"))
        #expect(live.phase == .progressing)
        #expect(!h.calls(of: "payments").contains { $0.hasPrefix("rollback") })
        #expect(report.outcomes.first?.message?.contains("stuck: no progress for 10m") == true, "\(report.outcomes)")
        #expect(
            TargetCondition.of(live, desired: h.reconciler.lastAppliedDesiredState, suspensions: [], now: h.clock.now())
                == .stuck)
    }

    @Test(
        "bad retry, circuit breaker and deadline fields name the place",
        arguments: [
            ("  retry: {limit: 50}\n", "spec.retry.limit: expected a whole number from 0 to 20"),
            ("  retry: {factor: 0.5}\n", "spec.retry.factor: expected a number from 1 to 10"),
            ("  retry: {tries: 2}\n", "spec.retry: unknown field 'tries'"),
            ("  progressDeadline: 0s\n", "spec.progressDeadline: must be longer than 0s"),
            ("  circuitBreaker: {failureThreshold: 3}\n", "spec: unknown field 'circuitBreaker'"),
        ])
    func badFields(_ spec: String, _ message: String) async throws {
        let h = try await started(extra: spec)
        let report = try await h.pass()
        #expect(report.rejected.contains { $0.description.contains(message) }, "\(report.rejected)")
    }
}
