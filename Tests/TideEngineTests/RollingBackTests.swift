import Foundation
import Testing
import TideEngine
import TideExecutors
import TideManifest
import TideState
import TideTestSupport

/// A rollback or an abort is a promise (the list on `Reconciler+RollingBack.swift`), tried here on every strategy
/// that keeps stable: a failed rollback is retried until stable serves; while it rolls back, nothing moves the
/// rollout forward — not a pass, not a revert, not a newer commit, not a control verb; the operator sees why.
@Suite("TideEngine: a rollback never gives up, an abort always holds")
struct RollingBackTests {
    static let strategies: [(String, String)] = [
        ("canary", "    type: canary\n    steps: [{setWeight: 40}, {setWeight: 80}]\n"),
        ("rolling", "    type: rolling\n    batches: [40%, 80%, 100%]\n"),
        ("blue-green", "    type: blue-green\n    autoPromotion: false\n"),
        ("shadow", "    type: shadow\n    mirror: 40%\n    duration: 10m\n    analysis: errors\n"),
        (
            "ab",
            "    type: ab\n    match: {header: {name: X-Beta, value: \"1\"}}\n    duration: 1h\n    analysis: errors\n"
        ),
    ]

    /// payments 2.0.0 runs; 2.1.0 rolls out with `strategy` and fails at its first check of the candidate after
    /// traffic moved (or, for blue-green, its preview check); every rollback fails with `outcome`.
    func failing(_ strategy: String, rollback outcome: ActionResult.Outcome) async throws -> Harness {
        let h = try Harness()
        try await h.fixture.commit(
            "2.0.0",
            files: [
                "services/payments.yaml": StrategyTests.service("2.0.0", strategy: strategy),
                "tide/analysis.yaml": StrategyTests.analysis,
            ])
        _ = try await h.pass()
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        try await h.fixture.commit(
            "2.1.0", files: ["services/payments.yaml": StrategyTests.service("2.1.0", strategy: strategy)])
        h.executor.fail(when: { $0.version == "2.1.0" && $0.action == .health })
        h.executor.fail(when: { $0.action == .rollback }, with: outcome)
        return h
    }

    @Test(
        "a failed rollback is retried until stable serves; the rollout never advances meanwhile",
        arguments: strategies, [ActionResult.Outcome.exited(75), .exited(1), .timedOut(seconds: 30)])
    func retriedUntilStableServes(_ strategy: (String, String), rollback outcome: ActionResult.Outcome) async throws {
        let h = try await failing(strategy.1, rollback: outcome)
        var report = try await h.pass()
        let first = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(first.result == .failed)
        var live = try #require(await h.live("payments"))
        #expect(live.phase == .rollingBack, "\(strategy.0): \(live.phase)")
        #expect(live.rollout?.rollingBack?.attempts == 1)
        #expect(live.rollout?.version == "2.1.0", "the rollout is kept until stable serves")
        #expect(first.message?.contains("attempt 1 failed") == true, "\(first.message ?? "")")
        let due = try #require(first.nextDue)

        // Before the next attempt is due: nothing runs, and nothing moves forward.
        report = try await h.pass(at: due - 1)
        #expect(h.calls(of: "payments").isEmpty, "\(h.calls(of: "payments"))")
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .failed)
        // A newer commit waits for the rollback (no 2.2.0 while 2.1.0 has traffic).
        try await h.fixture.commit(
            "2.2.0", files: ["services/payments.yaml": StrategyTests.service("2.2.0", strategy: strategy.1)])
        for _ in 0..<3 {
            let next = try #require(live.rollout?.rollingBack?.nextAttemptAt)
            _ = try await h.pass(at: next + 1)
            #expect(
                h.calls(of: "payments").allSatisfy { $0.hasPrefix("rollback 2.0.0") },
                "\(strategy.0): \(h.calls(of: "payments"))")
            #expect(!h.calls(of: "payments").isEmpty, "the attempt was due")
            live = try #require(await h.live("payments"))
            #expect(live.phase == .rollingBack)
        }
        #expect(live.rollout?.rollingBack?.attempts == 4)

        // The executor works again: stable serves, then the newer commit starts from it.
        h.executor.clearFailures()
        let waiting = try #require(live.rollout?.rollingBack?.nextAttemptAt)
        report = try await h.pass(at: waiting + 1)
        #expect(h.calls(of: "payments").prefix(2) == ["rollback 2.0.0 100", "health 2.0.0 100"], "\(h.calls())")
        live = try #require(await h.live("payments"))
        #expect(live.phase == .rolledBack || live.rollout?.version == "2.2.0", "\(live.phase)")
        let events = await h.store.events(EventQuery(service: "payments", limit: 1000))
        #expect(events.contains { $0.kind == .deploymentRolledBack && $0.version == "2.0.0" })
        #expect(events.filter { $0.kind == .rollbackFailed }.count == 4)
        _ = try await h.pass()
        _ = try await h.pass()
        let requests = h.executor.requests.filter { $0.service == "payments" }
        #expect(!requests.contains { $0.version == "2.1.0" }, "2.1.0 came back: \(requests.map(\.action))")
    }

    @Test("tide abort whose rollback fails holds: it says so, and no later pass promotes the aborted version")
    func abortHolds() async throws {
        let h = try Harness()
        let canary = "    type: canary\n    steps: [{setWeight: 40}, {pause: {}}, {setWeight: 80}]\n"
        try await h.fixture.commit(
            "2.0.0", files: ["services/payments.yaml": StrategyTests.service("2.0.0", strategy: canary)])
        _ = try await h.pass()
        try await h.fixture.commit(
            "2.1.0", files: ["services/payments.yaml": StrategyTests.service("2.1.0", strategy: canary)])
        _ = try await h.pass()
        #expect(await h.live("payments")?.rollout?.weight == 40)
        h.executor.fail(when: { $0.action == .rollback }, with: .exited(75))
        await #expect(throws: ControlError.self) {
            _ = try await h.reconciler.control(.abort, service: "payments", environment: "prod", by: "dana")
        }
        var live = try #require(await h.live("payments"))
        #expect(live.phase == .rollingBack)
        #expect(live.rollout?.rollingBack?.cause == .abort)
        // Promoting past the pause, or pausing, is refused; promote alone does not move it.
        await #expect(throws: ControlError.self) {
            _ = try await h.reconciler.control(.promote(full: false), service: "payments", environment: "prod", by: "x")
        }
        for _ in 0..<3 {
            _ = try await h.pass()
            #expect(!h.calls(of: "payments").contains { $0.hasPrefix("set-weight") || $0.hasPrefix("promote") })
        }
        // tide retry means "try the rollback again now".
        h.executor.clearFailures()
        let answer = try await h.reconciler.control(.retry, service: "payments", environment: "prod", by: "dana")
        #expect(answer.contains("rolled back to 2.0.0 after tide abort"), "\(answer)")
        live = try #require(await h.live("payments"))
        #expect(live.phase == .rolledBack && live.version == "2.0.0")
        #expect(live.failed?.version == "2.1.0", "the aborted version is held")
    }

    @Test("promote --full on an aborted rollout clears the abort and promotes, as Argo Rollouts")
    func promoteFullClearsAbort() async throws {
        let h = try Harness()
        let canary = "    type: canary\n    steps: [{setWeight: 40}, {pause: {}}, {setWeight: 80}]\n"
        try await h.fixture.commit(
            "2.0.0", files: ["services/payments.yaml": StrategyTests.service("2.0.0", strategy: canary)])
        _ = try await h.pass()
        try await h.fixture.commit(
            "2.1.0", files: ["services/payments.yaml": StrategyTests.service("2.1.0", strategy: canary)])
        _ = try await h.pass()
        h.executor.fail(when: { $0.action == .rollback }, with: .exited(1))
        _ = try? await h.reconciler.control(.abort, service: "payments", environment: "prod", by: "dana")
        h.executor.clearFailures()
        _ = try await h.reconciler.control(.promote(full: true), service: "payments", environment: "prod", by: "dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["promote 2.1.0 100", "health 2.1.0 100"], "\(h.calls(of: "payments"))")
        #expect(await h.live("payments")?.version == "2.1.0")
        #expect(await h.live("payments")?.phase == .healthy)
    }

    @Test("a blue-green pre-empted after its switch is finished, not rolled back: traffic never returns to 1.0.0")
    func blueGreenPreemptedAfterSwitch() async throws {
        let h = try Harness()
        let blueGreen = "    type: blue-green\n    autoPromotion: true\n    scaleDownDelay: 10m\n"
        try await h.fixture.commit(
            "1.0.0", files: ["services/payments.yaml": StrategyTests.service("1.0.0", strategy: blueGreen)])
        _ = try await h.pass()
        try await h.fixture.commit(
            "2.0.0", files: ["services/payments.yaml": StrategyTests.service("2.0.0", strategy: blueGreen)])
        _ = try await h.pass()
        #expect(h.calls(of: "payments").contains("promote 2.0.0 100"), "\(h.calls(of: "payments"))")
        #expect(await h.live("payments")?.phase == .progressing, "waiting out scaleDownDelay")
        try await h.fixture.commit(
            "3.0.0", files: ["services/payments.yaml": StrategyTests.service("3.0.0", strategy: blueGreen)])
        _ = try await h.pass()
        let calls = h.executor.requests.filter { $0.service == "payments" }
        #expect(!calls.contains { $0.action == .rollback }, "\(calls.map { "\($0.action) \($0.version)" })")
        #expect(
            calls.first.map { "\($0.action.rawValue) \($0.version) prev=\($0.previousVersion ?? "-")" }
                == "scale-down 2.0.0 prev=1.0.0")
        let deploy = try #require(calls.first { $0.action == .deploy })
        #expect(deploy.version == "3.0.0" && deploy.previousVersion == "2.0.0", "\(deploy)")
        let events = await h.store.events(EventQuery(service: "payments", kinds: [.deploymentSucceeded], limit: 10))
        #expect(events.contains { $0.version == "2.0.0" }, "2.0.0 completed as a deployment")
    }

    @Test("a pre-emption whose rollback fails shows RollingBack with the reason, and the new version waits")
    func preemptionRollbackFails() async throws {
        let h = try Harness()
        let canary = "    type: canary\n    steps: [{setWeight: 40}, {pause: {}}]\n"
        try await h.fixture.commit(
            "2.0.0", files: ["services/payments.yaml": StrategyTests.service("2.0.0", strategy: canary)])
        _ = try await h.pass()
        try await h.fixture.commit(
            "2.1.0", files: ["services/payments.yaml": StrategyTests.service("2.1.0", strategy: canary)])
        _ = try await h.pass()
        h.executor.fail(when: { $0.action == .rollback }, with: .exited(1))
        try await h.fixture.commit(
            "2.2.0", files: ["services/payments.yaml": StrategyTests.service("2.2.0", strategy: canary)])
        let report = try await h.pass()
        let live = try #require(await h.live("payments"))
        #expect(live.phase == .rollingBack)
        #expect(live.rollout?.rollingBack?.cause == .preemption)
        #expect(live.rollout?.rollingBack?.reason.contains("pre-empted by 2.2.0") == true)
        #expect(report.outcomes.first?.message?.contains("attempt 1 failed") == true, "\(report.outcomes)")
        #expect(!h.calls(of: "payments").contains { $0.hasPrefix("deploy 2.2.0") })
        h.executor.clearFailures()
        _ = try await h.pass(at: (live.rollout?.rollingBack?.nextAttemptAt ?? h.clock.now()) + 1)
        _ = try await h.pass()
        #expect(await h.live("payments")?.rollout?.version == "2.2.0")
    }

    @Test("a config-only rollback carries stable's kept config when the live commit was rewritten away (squash, gc)")
    func stableConfigKept() async throws {
        let h = try Harness()
        let canary = "    type: canary\n    steps: [{setWeight: 40}, {setWeight: 80}]\n"
        func service(_ config: String) -> String {
            StrategyTests.service("2.0.0", strategy: canary).replacingOccurrences(
                of: "{replicas: 1}", with: config)
        }
        let live = try await h.fixture.commit("replicas 3", files: ["services/payments.yaml": service("{replicas: 3}")])
        _ = try await h.pass()
        #expect(await h.live("payments")?.release?.config == .object(["replicas": .int(3)]))

        // History rewritten: one squashed root, the old commits collected.
        try await h.fixture.git("checkout", "-q", "--orphan", "squashed")
        try await h.fixture.git("commit", "-q", "--no-verify", "-m", "squashed history")
        try await h.fixture.git("branch", "-q", "-D", "main")
        try await h.fixture.git("branch", "-q", "-m", "main")
        try await h.fixture.git("reflog", "expire", "--expire=now", "--all")
        try await h.fixture.git("gc", "-q", "--prune=now")
        #expect(throws: (any Error).self) { try h.fixture.git("cat-file", "-e", live.hex) }

        // A config-only canary that fails: the rollback must bring back replicas 3, not the failed 7.
        try await h.fixture.commit("replicas 7", files: ["services/payments.yaml": service("{replicas: 7}")])
        h.executor.fail(when: { $0.action == .setWeight && $0.weight == 80 })
        // Without --allow-history-rewrite the squashed head is held (hardening round two, 7): nothing runs.
        _ = try await h.pass()
        #expect(h.executor.requests.isEmpty, "\(h.calls())")
        h.clock.advance(by: h.step)
        _ = try await h.makeReconciler(allowHistoryRewrite: true).reconcile(lockTimeout: 1)
        let rollback = try #require(h.executor.requests.first { $0.action == .rollback }, "\(h.calls())")
        #expect(rollback.config == .object(["replicas": .int(3)]), "\(rollback.config)")
        #expect(rollback.previousConfig == .object(["replicas": .int(7)]))
        #expect(await h.live("payments")?.phase == .rolledBack)
    }
}
