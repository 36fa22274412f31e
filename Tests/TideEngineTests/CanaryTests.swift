import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

@Suite("TideEngine: canary rollouts, one pass at a time")
struct CanaryTests {
    static func canary(_ version: String) -> String {
        serviceYAML("payments", version: version).replacingOccurrences(
            of: "  executor: local\n",
            with: """
                  executor: local
                  strategy:
                    type: canary
                    steps:
                      - setWeight: 10
                      - pause: 10m
                      - setWeight: 50
                      - pause: {}

                """)
    }

    func started() async throws -> Harness {
        let h = try Harness()
        try await h.fixture.commit("canary", files: ["services/payments.yaml": Self.canary("2.0.0")])
        _ = try await h.pass()
        try await h.fixture.commit("2.1.0", files: ["services/payments.yaml": Self.canary("2.1.0")])
        return h
    }

    @Test("a first deployment has no stable side: it goes straight to 100 %")
    func firstDeployment() async throws {
        let h = try Harness()
        try await h.fixture.commit("canary", files: ["services/payments.yaml": Self.canary("2.0.0")])
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["deploy 2.0.0 100", "health 2.0.0 100"])
    }

    @Test("weights and pauses advance with the clock; an open-ended pause waits for promote")
    func walk() async throws {
        let h = try await started()
        var report = try await h.pass()
        #expect(h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 10"])
        let first = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(first.result == .progressing)
        #expect(first.nextDue == h.clock.now().addingTimeInterval(600))
        #expect(report.outcomes.first { $0.target.service == "checkout" }?.result == .unchanged)
        #expect(!report.hasFailures)
        #expect(await h.live("payments")?.rollout?.weight == 10)
        #expect(await h.live("payments")?.rollout?.nextDue == h.clock.now().addingTimeInterval(600))

        h.clock.advance(by: 240)  // pass() adds 60 s: 5 minutes in
        report = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty)

        h.clock.advance(by: 240)  // 10 minutes in
        report = try await h.pass()
        #expect(h.calls(of: "payments") == ["set-weight 2.1.0 50"])
        #expect(
            report.outcomes.first?.message
                == "step 4/4: pause at weight 50, waiting for tide promote payments --env prod")
        #expect(report.outcomes.first?.nextDue == nil)
        #expect(await h.live("payments")?.rollout?.nextDue == nil, "an open-ended pause waits for a person")

        h.clock.advance(by: 86_400)
        _ = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty, "an open-ended pause does not time out")

        let said = try await h.reconciler.control(
            .promote(full: false), service: "payments", environment: "prod", by: "dana")
        #expect(said.contains("promoted past step 4/4: pause"))
        report = try await h.pass()
        #expect(
            h.calls(of: "payments").filter { $0.hasPrefix("promote") || $0.hasPrefix("health 2.1.0 100") } == [
                "promote 2.1.0 100", "health 2.1.0 100",
            ])
        #expect(await h.live("payments")?.version == "2.1.0")
        #expect(await h.live("payments")?.phase == .healthy)
    }

    @Test("promote --full skips the remaining weights and pauses")
    func promoteFull() async throws {
        let h = try await started()
        _ = try await h.pass()
        _ = try await h.reconciler.control(.promote(full: true), service: "payments", environment: "prod", by: "dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["promote 2.1.0 100", "health 2.1.0 100"])
        #expect(await h.live("payments")?.version == "2.1.0")
    }

    @Test("pause holds a timed pause past its end; resume lets it go on")
    func pauseResume() async throws {
        let h = try await started()
        _ = try await h.pass()
        _ = try await h.reconciler.control(.pause, service: "payments", environment: "prod", by: "dana")
        h.clock.advance(by: 3600)
        let held = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty)
        #expect(held.outcomes.first?.message?.contains("tide resume continues") == true)
        _ = try await h.reconciler.control(.resume, service: "payments", environment: "prod", by: "dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["set-weight 2.1.0 50"])
    }

    @Test("abort sends traffic back to stable and holds the version; retry tries it again")
    func abortRetry() async throws {
        let h = try await started()
        _ = try await h.pass()
        h.executor.reset()
        let said = try await h.reconciler.control(.abort, service: "payments", environment: "prod", by: "dana")
        #expect(said.contains("rolled back to 2.0.0"))
        #expect(h.calls(of: "payments") == ["rollback 2.0.0 100", "health 2.0.0 100"])
        let payments = try #require(await h.live("payments"))
        #expect(payments.phase == .rolledBack)
        #expect(payments.version == "2.0.0")
        #expect(payments.failed?.message == "aborted by dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty, "held after abort")
        _ = try await h.reconciler.control(.retry, service: "payments", environment: "prod", by: "dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 10"])
        await #expect(throws: ControlError.self) {
            try await h.reconciler.control(.retry, service: "checkout", environment: "prod", by: "dana")
        }
    }

    @Test("a failing step in a canary returns traffic to stable")
    func failure() async throws {
        let h = try await started()
        h.executor.fail(when: { $0.action == .setWeight && $0.weight == 10 })
        let report = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 10", "rollback 2.0.0 100", "health 2.0.0 100",
            ])
        #expect(report.hasFailures)
        #expect(await h.live("payments")?.phase == .rolledBack)
    }

    @Test("a newer commit pre-empts a paused canary")
    func preempt() async throws {
        let h = try await started()
        _ = try await h.pass()
        try await h.fixture.commit("2.2.0", files: ["services/payments.yaml": Self.canary("2.2.0")])
        _ = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "rollback 2.0.0 100", "deploy 2.2.0 0", "health 2.2.0 0", "set-weight 2.2.0 10",
            ])
        #expect(h.executor.requests.first?.previousVersion == "2.1.0", "the pre-empted candidate")
    }

    @Test("tide pause holds the rollout across newer commits until tide resume; then the newer one pre-empts it")
    func pauseHoldsAcrossCommits() async throws {
        let h = try await started()
        _ = try await h.pass()  // 2.1.0 at weight 10
        _ = try await h.reconciler.control(.pause, service: "payments", environment: "prod", by: "dana")
        try await h.fixture.commit("2.2.0", files: ["services/payments.yaml": Self.canary("2.2.0")])
        var report = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty, "held: nothing pre-empts a paused rollout")
        let waiting = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(waiting.result == .waiting)
        #expect(waiting.message?.contains("paused (by dana); 2.2.0 waits: tide resume payments --env prod") == true)
        #expect(await h.live("payments")?.rollout?.version == "2.1.0")
        _ = try await h.reconciler.control(.resume, service: "payments", environment: "prod", by: "dana")
        report = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "rollback 2.0.0 100", "deploy 2.2.0 0", "health 2.2.0 0", "set-weight 2.2.0 10",
            ])
    }

    @Test("a canary whose strategy changes under it is pre-empted, never marked healthy without a promote")
    func strategyChangeMidRollout() async throws {
        let h = try await started()
        _ = try await h.pass()  // 2.1.0 at weight 10, pausing
        #expect(await h.live("payments")?.rollout?.weight == 10)
        // Same version, recreate now: the old step index must not run off the end of a shorter list.
        try await h.fixture.commit(
            "recreate", files: ["services/payments.yaml": serviceYAML("payments", version: "2.1.0")])
        let plan = try #require(try await h.reconciler.plan().1?.actions.first { $0.target.service == "payments" })
        #expect(plan.kind == .deploy)
        #expect(plan.reason?.contains("the strategy's steps changed while 2.1.0 rolled out") == true)
        _ = try await h.pass()
        // Traffic back to stable first, then the new desired state rolls out with its own steps.
        #expect(h.calls(of: "payments") == ["rollback 2.0.0 100", "deploy 2.1.0 100", "health 2.1.0 100"])
        let live = try #require(await h.live("payments"))
        #expect(live.phase == .healthy && live.version == "2.1.0")
        // Every step of the new attempt has an id of its own, not the pre-empted attempt's.
        let ids = h.executor.requests.map(\.actionID)
        #expect(Set(ids).count == ids.count)
        #expect(ids[0].split(separator: ".")[3] != ids[1].split(separator: ".")[3], "\(ids)")
    }
}
