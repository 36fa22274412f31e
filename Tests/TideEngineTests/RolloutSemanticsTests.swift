import Foundation
import Testing
import TideEngine
import TideExecutors
import TideManifest
import TideState
import TideTestSupport

/// What a trial against Argo Rollouts found wrong, each through real passes over a real git repository.
@Suite("TideEngine: rollout semantics (frozen steps, truthful requests, analyses that keep watching)")
struct RolloutSemanticsTests {
    let strategies = StrategyTests()

    func analysis(_ name: String, interval: String = "2m", count: Int = 3) -> String {
        StrategyTests.analysis.replacingOccurrences(of: "name: errors", with: "name: \(name)")
            .replacingOccurrences(of: "spec:\n", with: "spec:\n  interval: \(interval)\n  count: \(count)\n")
    }

    @Test(
        "TIDE_STRATEGY is on every action: recreate for a first deployment, the rollout's own for measure and rollback")
    func strategyOnEveryAction() async throws {
        let h = try await strategies.started(
            "    type: canary\n    steps: [{setWeight: 10}, {analysis: errors}]\n", rate: "0.5")
        _ = try await h.pass()
        let requests = h.executor.requests.filter { $0.service == "payments" }
        #expect(
            requests.map(\.action) == [.deploy, .health, .setWeight, .measure, .rollback, .health],
            "\(requests.map(\.action))")
        #expect(requests.allSatisfy { $0.strategy == "canary" }, "\(requests.map { $0.strategy ?? "nil" })")
        #expect(requests.first { $0.action == .measure }?.weight == 10, "the candidate's share when measured")

        // A first deployment of a canary service runs (and says) recreate.
        let fresh = try Harness()
        try await fresh.fixture.commit(
            "canary from the start",
            files: [
                "services/payments.yaml": StrategyTests.service(
                    "1.0.0", strategy: "    type: canary\n    steps: [{setWeight: 10}]\n")
            ])
        _ = try await fresh.pass()
        let deploy = try #require(fresh.executor.requests.first { $0.service == "payments" })
        #expect(deploy.strategy == "recreate")
        #expect(deploy.weight == 100)
    }

    @Test("a pre-empted canary's rollback says the strategy it ran, and the newer rollout starts after it")
    func preemptedStrategy() async throws {
        let strategy = "    type: canary\n    steps: [{setWeight: 10}, {pause: {}}]\n"
        let h = try await strategies.started(strategy)
        _ = try await h.pass()
        try await h.fixture.commit(
            "2.2.0", files: ["services/payments.yaml": StrategyTests.service("2.2.0", strategy: strategy)])
        _ = try await h.pass()
        let requests = h.executor.requests.filter { $0.service == "payments" }
        #expect(requests.map(\.action).prefix(2) == [.rollback, .deploy])
        #expect(requests[0].strategy == "canary")
        #expect(requests[0].previousVersion == "2.1.0")
        #expect(requests[0].version == "2.0.0")
        let superseded = await h.store.events(EventQuery(kinds: [.deploymentSuperseded], limit: 10))
        #expect(superseded.map(\.version) == ["2.1.0"])
    }

    @Test("the steps are frozen when the rollout starts: a changed manifest never changes the steps under way")
    func frozenSteps() async throws {
        let h = try await strategies.started("    type: canary\n    steps: [{setWeight: 10}, {pause: 5m}]\n")
        _ = try await h.pass()
        let plan = try #require(await h.live("payments")?.rollout?.plan)
        #expect(plan.strategy == .canary)
        #expect(plan.steps.map(\.label)[2] == "step 1/2: setWeight 10%")
        #expect(plan.steps.map(\.step)[3] == .pause(300))
        // Same strategy, same steps, another comment: the rollout goes on with its own plan.
        try await h.fixture.commit(
            "comment",
            files: [
                "services/payments.yaml": StrategyTests.service(
                    "2.1.0", strategy: "    type: canary\n    steps: [{setWeight: 10}, {pause: 5m}]\n") + "# note\n"
            ])
        h.clock.advance(by: 300)
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["promote 2.1.0 100", "health 2.1.0 100"])
    }

    @Test("canary weights may go down, as in Argo Rollouts")
    func nonMonotonicWeights() async throws {
        let h = try await strategies.started(
            "    type: canary\n    steps: [{setWeight: 50}, {setWeight: 10}, {setWeight: 30}]\n")
        _ = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 50", "set-weight 2.1.0 10", "set-weight 2.1.0 30",
                "promote 2.1.0 100", "health 2.1.0 100",
            ])
    }

    /// A canary with background analysis `watch` (3 rounds, 2m apart) whose step analysis was inconclusive (between
    /// its conditions): after one pass the rollout waits for a person.
    func pausedForAPersonWithBackground() async throws -> (EngineHarness<InMemoryStateStore>, ReconcileReport) {
        let h = try await strategies.started(
            """
                type: canary
                backgroundAnalysis: watch
                steps: [{setWeight: 10}, {analysis: errors}, {setWeight: 50}]

            """,
            extra: ["tide/watch.yaml": analysis("watch")])
        h.executor.respond(when: { $0.actionID.contains("analysis-errors") }, with: "0.02")
        return (h, try await h.pass())
    }

    @Test("a background analysis keeps measuring while a person decides, and its failure still aborts the rollout")
    func backgroundWhilePausedForAPerson() async throws {
        let (h, first) = try await pausedForAPersonWithBackground()
        var report = first
        #expect(await h.live("payments")?.rollout?.paused == true)
        #expect(report.outcomes.first?.nextDue != nil, "the background analysis is still due")
        // While the person thinks, the candidate starts failing: the next background round aborts the rollout.
        h.executor.respond(when: { $0.actionID.contains("analysis-watch") }, with: "0.5")
        h.clock.advance(by: 120)
        report = try await h.pass()
        #expect(h.calls(of: "payments") == ["measure 2.1.0 10", "rollback 2.0.0 100", "health 2.0.0 100"])
        #expect(report.outcomes.first?.message?.contains("background analysis watch failed") == true)
        #expect(await h.live("payments")?.phase == .rolledBack)
    }

    @Test("a late pass takes one missed analysis round, not a burst; the interval between rounds is honoured")
    func missedRounds() async throws {
        let h = try await strategies.started(
            "    type: canary\n    steps: [{setWeight: 10}, {analysis: slow}]\n",
            extra: ["tide/slow.yaml": analysis("slow", interval: "1m", count: 3)])
        _ = try await h.pass()
        #expect(h.calls(of: "payments").filter { $0.hasPrefix("measure") }.count == 1)
        // Tide was down for 10 minutes: 2 rounds are overdue, but only one is taken now.
        h.clock.advance(by: 600)
        var report = try await h.pass()
        #expect(h.calls(of: "payments") == ["measure 2.1.0 10"])
        let due = try #require(report.outcomes.first?.nextDue)
        #expect(due == h.clock.now().addingTimeInterval(60), "the next round an interval after this one")
        report = try await h.pass()  // the harness moves the clock one minute per pass: the third round is due
        #expect(h.calls(of: "payments") == ["measure 2.1.0 10", "promote 2.1.0 100", "health 2.1.0 100"])
        #expect(report.outcomes.first?.result == .deployed)
    }
}

extension RolloutSemanticsTests {
    @Test("a config-only change rolled out as a canary names both sides; its rollback carries stable's config")
    func configOnlySides() async throws {
        let canary = "    type: canary\n    steps: [{setWeight: 10}, {analysis: errors}]\n"
        let h = try await strategies.started(canary)
        _ = try await h.pass()  // 2.1.0 live
        h.executor.respond(when: { $0.action == .measure }, with: "0.5")
        let changed = StrategyTests.service("2.1.0", strategy: canary).replacingOccurrences(
            of: "config: {replicas: 1}", with: "config: {replicas: 5}")
        try await h.fixture.commit("replicas 5", files: ["services/payments.yaml": changed])
        _ = try await h.pass()
        let requests = h.executor.requests.filter { $0.service == "payments" }
        let deploy = try #require(requests.first { $0.action == .deploy })
        #expect(deploy.version == "2.1.0" && deploy.previousVersion == "2.1.0", "one version on both sides")
        let candidate = try #require(deploy.configDigest)
        let stable = try #require(deploy.previousConfigDigest)
        #expect(candidate != stable, "the sides are told apart by their config digests")
        #expect(deploy.config == .object(["replicas": .int(5)]))
        #expect(deploy.previousConfig == .object(["replicas": .int(1)]))
        #expect(deploy.environmentVariables["TIDE_CONFIG_DIGEST"] == candidate)
        let rollback = try #require(requests.first { $0.action == .rollback })
        #expect(rollback.config == .object(["replicas": .int(1)]), "back to stable's config, not the failed one")
        #expect(rollback.configDigest == stable)
        #expect(rollback.previousConfigDigest == candidate)
    }
}

extension RolloutSemanticsTests {
    @Test("tide pause holds against a config-only commit too, until tide resume")
    func pauseHoldsConfigChange() async throws {
        let canary = "    type: canary\n    steps: [{setWeight: 10}, {pause: 1h}]\n"
        let h = try await strategies.started(canary)
        _ = try await h.pass()
        _ = try await h.reconciler.control(.pause, service: "payments", environment: "prod", by: "dana")
        let changed = StrategyTests.service("2.1.0", strategy: canary).replacingOccurrences(
            of: "config: {replicas: 1}", with: "config: {replicas: 5}")
        try await h.fixture.commit("replicas 5", files: ["services/payments.yaml": changed])
        let report = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty, "no rollback, no new deploy while held")
        #expect(report.outcomes.first?.message?.contains("paused (by dana)") == true, "\(report.outcomes)")
        _ = try await h.reconciler.control(.resume, service: "payments", environment: "prod", by: "dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments").prefix(2) == ["rollback 2.0.0 100", "deploy 2.1.0 0"])
    }

    @Test("a canary's setWeight: 100 waits for the background analysis' proof like promote does")
    func fullWeightNeedsProof() async throws {
        let h = try await strategies.started(
            "    type: canary\n    backgroundAnalysis: errors\n    steps: [{setWeight: 100}]\n")
        h.executor.respond(when: { $0.action == .measure }, with: "")  // no data: never a proof
        _ = try await h.pass()
        #expect(!h.calls(of: "payments").contains("set-weight 2.1.0 100"))
        #expect(await h.live("payments")?.rollout?.paused == true, "no proof: a person decides")
    }
}

extension RolloutSemanticsTests {
    @Test(
        "a rollout recorded before plans were kept (no plan, the old step digest) goes on where it was, not pre-empted")
    func upgradeMidRollout() async throws {
        let canary = "    type: canary\n    steps: [{setWeight: 10}, {pause: 5m}, {setWeight: 50}]\n"
        let h = try await strategies.started(canary)
        _ = try await h.pass()  // at the 5-minute pause, weight 10
        var live = try #require(await h.live("payments"))
        var rollout = try #require(live.rollout)
        // As an older Tide wrote it: no plan, no stable digest, the digest in the old field.
        let plan = try #require(rollout.plan)
        rollout.stepsDigest = plan.digest
        rollout.plan = nil
        rollout.stableConfigDigest = nil
        live.rollout = rollout
        // The JSON an older Tide stored decodes without the new keys.
        let encoded = try JSONEncoder().encode(live)
        var object = try #require(try JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        var stored = try #require(object["rollout"] as? [String: Any])
        for key in ["plan", "transientFailures", "stalledSince", "retryAt", "retryReason", "stableConfigDigest"] {
            stored[key] = nil
        }
        object["rollout"] = stored
        let old = try JSONDecoder().decode(LiveTarget.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(old.rollout?.plan == nil)
        await h.store.apply(StateWrite(targets: [old]))

        h.clock.advance(by: 300)
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["set-weight 2.1.0 50", "promote 2.1.0 100", "health 2.1.0 100"])
        #expect(h.executor.requests.allSatisfy { $0.service != "payments" || $0.strategy == "canary" })
        #expect(await h.live("payments")?.phase == .healthy)
    }
}

extension RolloutSemanticsTests {
    @Test("a background analysis that turns inconclusive while a person decides still schedules its next round")
    func backgroundInconclusiveWhilePaused() async throws {
        let h = try await pausedForAPersonWithBackground().0
        #expect(await h.live("payments")?.rollout?.paused == true)
        h.executor.respond(when: { $0.actionID.contains("analysis-watch") }, with: "0.02")
        h.clock.advance(by: 120)
        let report = try await h.pass()
        #expect(h.calls(of: "payments") == ["measure 2.1.0 10"])
        let due = try #require(report.outcomes.first?.nextDue, "the third round is still to come")
        #expect(due == h.clock.now().addingTimeInterval(120))
    }
}
