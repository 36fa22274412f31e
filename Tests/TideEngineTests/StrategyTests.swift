import Foundation
import Testing
import TideEngine
import TideExecutors
import TideManifest
import TideState
import TideTestSupport

/// Rolling, blue-green, shadow and A/B rollouts, advanced one pass at a time under a test clock.
@Suite("TideEngine: rolling, blue-green, shadow and A/B strategies")
struct StrategyTests {
    static func service(_ version: String, strategy: String) -> String {
        serviceYAML("payments", version: version).replacingOccurrences(
            of: "  executor: local\n", with: "  executor: local\n  strategy:\n" + strategy)
    }

    static let analysis = """
        apiVersion: tide/v1
        kind: Analysis
        metadata: {name: errors}
        spec:
          metrics:
            - name: error-rate
              provider: {command: {command: ["/usr/local/bin/error-rate"]}}
              successCondition: "result < 0.01"
              failureCondition: "result >= 0.05"

        """

    /// 2.0.0 runs (a first deployment goes straight to 100 %); 2.1.0 is committed with `strategy`.
    func started(_ strategy: String, rate: String = "0.001", extra: [String: String] = [:]) async throws -> Harness {
        let h = try Harness()
        try await h.fixture.commit(
            "2.0.0",
            files: [
                "services/payments.yaml": Self.service("2.0.0", strategy: strategy),
                "tide/analysis.yaml": Self.analysis,
            ].merging(extra) { $1 })
        _ = try await h.pass()
        h.executor.respond(when: { $0.action == .measure }, with: rate)
        try await h.fixture.commit(
            "2.1.0", files: ["services/payments.yaml": Self.service("2.1.0", strategy: strategy)])
        return h
    }

    @Test("rolling replaces instances batch by batch with a health check after each")
    func rolling() async throws {
        let h = try await started("    type: rolling\n    batches: [25%, 50%, 100%]\n")
        let report = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "deploy 2.1.0 25", "health 2.1.0 25", "set-weight 2.1.0 50", "health 2.1.0 50", "promote 2.1.0 100",
                "health 2.1.0 100",
            ])
        #expect(h.executor.requests.last?.strategy == "rolling")
        #expect(report.outcomes.first?.result == .deployed)
    }

    @Test("rolling with maxSurge/maxUnavailable; a failed batch rolls the replaced instances back")
    func rollingFailure() async throws {
        let h = try await started("    type: rolling\n    maxSurge: 50%\n    maxUnavailable: 0\n")
        h.executor.fail(when: { $0.action == .health && $0.weight == 50 && $0.version == "2.1.0" })
        let report = try await h.pass()
        #expect(
            h.calls(of: "payments") == ["deploy 2.1.0 50", "health 2.1.0 50", "rollback 2.0.0 100", "health 2.0.0 100"])
        #expect(report.outcomes.first?.result == .failed)
        #expect(await h.live("payments")?.phase == .rolledBack)
        #expect(await h.live("payments")?.version == "2.0.0")
    }

    @Test("blue-green: preview, wait for promote, switch, keep the old side for scaleDownDelay, scale down")
    func blueGreen() async throws {
        let h = try await started(
            "    type: blue-green\n    previewAnalysis: errors\n    autoPromotion: false\n    scaleDownDelay: 5m\n")
        var report = try await h.pass()
        #expect(h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "measure 2.1.0 0"])
        #expect(report.outcomes.first?.message?.contains("waiting for tide promote payments --env prod") == true)
        _ = try await h.reconciler.control(.promote(full: false), service: "payments", environment: "prod", by: "dana")
        report = try await h.pass()
        #expect(h.calls(of: "payments") == ["promote 2.1.0 100", "health 2.1.0 100"])
        #expect(report.outcomes.first?.result == .progressing)
        #expect(report.outcomes.first?.nextDue == h.clock.now().addingTimeInterval(300))
        #expect(await h.live("payments")?.rollout?.weight == 100)

        h.clock.advance(by: 240)  // + 60 s in pass(): the old side may go
        report = try await h.pass()
        let scaleDown = try #require(h.executor.requests.last)
        #expect(h.calls(of: "payments") == ["scale-down 2.1.0 100"])
        #expect(scaleDown.previousVersion == "2.0.0")
        #expect(report.outcomes.first?.result == .deployed)
        #expect(await h.live("payments")?.version == "2.1.0")
    }

    @Test("blue-green: a failing post-promotion analysis switches straight back to the old side")
    func blueGreenSwitchBack() async throws {
        let h = try await started("    type: blue-green\n    postPromotionAnalysis: errors\n", rate: "0.2")
        let report = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "deploy 2.1.0 0", "health 2.1.0 0", "promote 2.1.0 100", "health 2.1.0 100", "measure 2.1.0 100",
                "rollback 2.0.0 100", "health 2.0.0 100",
            ])
        #expect(report.outcomes.first?.message?.contains("analysis errors failed") == true)
        #expect(await h.live("payments")?.phase == .rolledBack)
    }

    @Test("shadow: mirror traffic, wait, let the analysis promote")
    func shadowPromotes() async throws {
        let h = try await started("    type: shadow\n    mirror: 50%\n    duration: 10m\n    analysis: errors\n")
        var report = try await h.pass()
        #expect(h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "mirror 2.1.0 50"])
        let mirror = try #require(h.executor.requests.last)
        #expect(mirror.traffic == .object(["mirror": .int(50)]))
        // TIDE_WEIGHT is the share of traffic the candidate sees: here mirrored copies, whose answers are discarded.
        #expect(await h.live("payments")?.rollout?.weight == 50)
        #expect(report.outcomes.first?.nextDue == h.clock.now().addingTimeInterval(600))
        h.clock.advance(by: 540)
        report = try await h.pass()
        #expect(h.calls(of: "payments") == ["measure 2.1.0 50", "promote 2.1.0 100", "health 2.1.0 100"])
        #expect(report.outcomes.first?.result == .deployed)
    }

    @Test("shadow: a failing analysis discards the candidate; stable never lost its traffic")
    func shadowDiscards() async throws {
        let h = try await started("    type: shadow\n    analysis: errors\n", rate: "0.5")
        let report = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "deploy 2.1.0 0", "health 2.1.0 0", "mirror 2.1.0 100", "measure 2.1.0 100", "rollback 2.0.0 100",
                "health 2.0.0 100",
            ])
        #expect(report.outcomes.first?.result == .failed)
        #expect(await h.live("payments")?.failed?.version == "2.1.0")
    }

    @Test("ab: split by user bucket for the duration, then compare and promote")
    func abSplit() async throws {
        let h = try await started(
            "    type: ab\n    match: {userKey: {header: X-User-Id, percent: 30}}\n    duration: 1h\n    analysis: errors\n"
        )
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "split 2.1.0 30"])
        let split = try #require(h.executor.requests.last)
        #expect(
            split.traffic
                == .object([
                    "match": .object(["userKey": .object(["header": .string("X-User-Id"), "percent": .int(30)])])
                ]))
        #expect(split.strategy == "ab")
        #expect(await h.live("payments")?.rollout?.weight == 30)
        h.clock.advance(by: 3540)
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["measure 2.1.0 30", "promote 2.1.0 100", "health 2.1.0 100"])
    }

    static let judged = """
        apiVersion: tide/v1
        kind: Analysis
        metadata: {name: compare}
        spec:
          interval: 10m
          count: 2
          judge: {pass: 90, marginal: 50}
          metrics:
            - name: latency
              provider: {command: {command: ["/usr/local/bin/latency"]}}
              baseline: {command: {command: ["/usr/local/bin/latency"]}}
              select: result.samples
            - name: errors
              provider: {command: {command: ["/usr/local/bin/errors"]}}
              baseline: {command: {command: ["/usr/local/bin/errors"]}}
              critical: true

        """

    /// Twenty latency samples around `center` for one round (a fixed spread: the test must not flake).
    static func latencies(_ center: Double) -> String {
        let values = (0..<20).map { String(center + 10 * sin(Double($0) * 1.7)) }
        return "{\"samples\": [\(values.joined(separator: ", "))]}"
    }

    /// An A/B rollout judged by the statistics: each round samples the candidate (`provider`) and stable
    /// (`baseline`, told apart by TIDE_SIDE, and here by the action id), then the judge decides.
    func judgedAB(candidate: Double, errors: String) async throws -> (Harness, ReconcileReport) {
        let h = try await started(
            "    type: ab\n    match: {header: {name: X-Beta, value: \"1\"}}\n    duration: 10m\n    analysis: compare\n",
            extra: ["tide/compare.yaml": Self.judged])
        let baseline: @Sendable (ActionRequest) -> Bool = { $0.actionID.hasSuffix("-baseline") }
        h.executor.respond(
            when: { $0.action == .measure && $0.actionID.contains("latency") }, with: Self.latencies(candidate))
        h.executor.respond(
            when: { $0.action == .measure && $0.actionID.contains("latency") && baseline($0) },
            with: Self.latencies(100))
        h.executor.respond(when: { $0.action == .measure && $0.actionID.contains("errors") }, with: errors)
        h.executor.respond(
            when: { $0.action == .measure && $0.actionID.contains("errors") && baseline($0) }, with: "[0, 1, 0, 0, 1]")
        _ = try await h.pass()  // deploy, split
        h.clock.advance(by: 540)
        _ = try await h.pass()  // first round
        #expect(h.calls(of: "payments") == Array(repeating: "measure 2.1.0 0", count: 4))
        h.clock.advance(by: 540)
        return (h, try await h.pass())  // second round, then the judge
    }

    @Test("ab with the judge: a candidate like stable scores 100 and is promoted")
    func judgedPass() async throws {
        let (h, report) = try await judgedAB(candidate: 100, errors: "[0, 1, 0, 0, 1]")
        #expect(report.outcomes.first?.result == .deployed, "\(report.outcomes.first?.message ?? "")")
        #expect(await h.live("payments")?.version == "2.1.0")
        let events = await h.store.events(EventQuery(limit: 1000)).map(\.message)
        #expect(events.contains { $0.contains("score 100 (pass ≥ 90, marginal ≥ 50): pass") })
    }

    @Test("ab with the judge: a slower candidate is High on latency, scores 50 and pauses for a person")
    func judgedMarginal() async throws {
        let (h, report) = try await judgedAB(candidate: 140, errors: "[0, 1, 0, 0, 1]")
        #expect(report.outcomes.first?.result == .progressing)
        let live = try #require(await h.live("payments"))
        #expect(live.rollout?.paused == true)
        guard case .object(let judgement)? = live.rollout?.analysis?.judgement else {
            Issue.record("no judgement stored")
            return
        }
        #expect(judgement["score"] == .double(50) || judgement["score"] == .int(50))
        #expect(judgement["verdict"] == .string("marginal"))
        #expect(report.outcomes.first?.message?.contains("latency High: canary median") == true)
    }

    @Test("ab with the judge: a critical metric failing rolls the candidate back")
    func judgedCriticalFailure() async throws {
        let (h, report) = try await judgedAB(candidate: 100, errors: "[5, 6, 7, 5, 6]")
        #expect(report.outcomes.first?.result == .failed)
        #expect(report.outcomes.first?.message?.contains("score 0") == true, "\(report.outcomes.first?.message ?? "")")
        #expect(report.outcomes.first?.message?.contains("errors High") == true)
        #expect(await h.live("payments")?.phase == .rolledBack)
    }

    static let inlineCanary = """
            type: canary
            steps:
              - setWeight: 20
              - analysis:
                  count: 2
                  interval: 5m
                  metrics:
                    - name: error-rate
                      provider: {command: {command: ["/usr/local/bin/error-rate"]}}
                      failureCondition: "result >= 0.05"
              - setWeight: 60

        """

    @Test("canary: an analysis written inline in a step measures like a named one")
    func inlineAnalysis() async throws {
        let h = try await started(Self.inlineCanary)
        _ = try await h.pass()
        #expect(
            h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 20", "measure 2.1.0 20"])
        #expect(await h.live("payments")?.rollout?.analysis?.name == "payments/step-2")
        h.executor.respond(when: { $0.action == .measure }, with: "0.2")
        h.clock.advance(by: 240)
        let report = try await h.pass()
        #expect(report.outcomes.first?.result == .failed)
        #expect(report.outcomes.first?.message?.contains("analysis payments/step-2 failed") == true)
        #expect(await h.live("payments")?.phase == .rolledBack)
    }

    @Test("canary: a broken inline analysis names its place in the steps")
    func badInlineAnalysis() async throws {
        let h = try Harness()
        let strategy = Self.inlineCanary.replacingOccurrences(of: "failureCondition", with: "failCondition")
        try await h.fixture.commit("bad", files: ["services/payments.yaml": Self.service("2.0.0", strategy: strategy)])
        let report = try await h.pass()
        #expect(
            report.rejected.map(\.description).contains {
                $0.hasPrefix("services/payments.yaml:")
                    && $0.contains("spec.strategy.steps[1].analysis.metrics[0]: unknown field 'failCondition'")
            }, "\(report.rejected)")
    }

    @Test("canary background analysis measures beside the steps and aborts the rollout when it fails")
    func backgroundAnalysis() async throws {
        let strategy = """
                type: canary
                backgroundAnalysis: errors
                steps: [{setWeight: 10}, {pause: 5m}, {setWeight: 50}, {pause: 5m}]

            """
        let h = try await started(strategy)
        var report = try await h.pass()
        #expect(
            h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "measure 2.1.0 0", "set-weight 2.1.0 10"])
        // Without a count, the background analysis keeps measuring until promotion (as Argo Rollouts' does): a
        // round at each pass that is due, beside the steps.
        h.clock.advance(by: 240)
        report = try await h.pass()
        #expect(h.calls(of: "payments") == ["measure 2.1.0 10", "set-weight 2.1.0 50"])
        #expect(report.outcomes.first?.result == .progressing)

        // With errors: the first background measurement fails the canary, whatever step it is at.
        let failing = try await started(strategy, rate: "0.4")
        report = try await failing.pass()
        #expect(
            failing.calls(of: "payments") == [
                "deploy 2.1.0 0", "health 2.1.0 0", "measure 2.1.0 0", "rollback 2.0.0 100", "health 2.0.0 100",
            ])
        #expect(report.outcomes.first?.message?.contains("background analysis errors failed") == true)
    }

    @Test("a background analysis with several rounds sets when the next pass is due")
    func backgroundRounds() async throws {
        let h = try await started(
            """
                type: canary
                backgroundAnalysis: rounds
                steps: [{setWeight: 10}, {pause: {}}]

            """,
            extra: [
                "tide/rounds.yaml": Self.analysis.replacingOccurrences(of: "name: errors", with: "name: rounds")
                    .replacingOccurrences(of: "spec:\n", with: "spec:\n  interval: 2m\n  count: 3\n")
            ])
        var report = try await h.pass()
        #expect(h.calls(of: "payments").filter { $0.hasPrefix("measure") }.count == 1)
        #expect(
            report.outcomes.first?.nextDue == h.clock.now().addingTimeInterval(120), "open pause, but a round is due")
        h.clock.advance(by: 60)
        report = try await h.pass()
        #expect(h.calls(of: "payments") == ["measure 2.1.0 10"])
        #expect(await h.live("payments")?.rollout?.background?.rounds == 2)
    }

    @Test(
        "bad strategies name the field",
        arguments: [
            ("    type: rolling\n    batches: [50%, 25%, 100%]\n", "spec.strategy.batches[1]: 25% is not above"),
            ("    type: rolling\n    batches: [25%, 50%]\n", "spec.strategy.batches: the last batch must be 100%"),
            ("    type: rolling\n    maxSurge: 0\n    maxUnavailable: 0%\n", "cannot both be 0%"),
            (
                "    type: blue-green\n    steps: [{setWeight: 5}]\n",
                "spec.strategy.steps: a blue-green strategy has no"
            ),
            (
                "    type: shadow\n    mirror: 150%\n    analysis: errors\n",
                "spec.strategy.mirror: expected a percentage"
            ),
            ("    type: shadow\n", "a shadow strategy needs an analysis"),
            ("    type: ab\n    analysis: errors\n    duration: 1h\n", "an ab strategy needs a match"),
            (
                "    type: ab\n    match: {header: {name: X}}\n    analysis: errors\n    duration: 1h\n",
                "missing required field 'value'"
            ),
            ("    type: blue-green\n    previewAnalysis: nope\n", "analysis 'nope' is not defined"),
            (
                "    type: bluegreen\n",
                "spec.strategy.type: 'bluegreen' is not one of recreate, rolling, blue-green, canary, shadow, ab; "
                    + "did you mean 'blue-green'?"
            ),
        ])
    func badStrategies(_ strategy: String, _ message: String) async throws {
        let h = try Harness()
        try await h.fixture.commit(
            "bad",
            files: [
                "services/payments.yaml": Self.service("2.0.0", strategy: strategy),
                "tide/analysis.yaml": Self.analysis,
            ])
        let report = try await h.pass()
        #expect(report.rejected.contains { $0.description.contains(message) }, "\(report.rejected)")
    }

    @Test(
        "bad judged analyses name the file, line and field",
        arguments: [
            (
                "judge: {pass: 90, marginal: 50}", "successCondition: x", "tide/compare.yaml:13:7: ",
                "successCondition: a judged analysis classifies"
            ),
            (
                "judge: {pass: 90, marginal: 95}", "direction: up", "tide/compare.yaml:7:31: ",
                "spec.judge.marginal: 95.0 is above pass"
            ),
            (
                "judge: {pass: 90}", "direction: up", "tide/compare.yaml:13:18: ",
                "direction: 'up' is not increase, decrease or either"
            ),
            (
                "initialDelay: 1m", "critical: true", "tide/compare.yaml:13:7: ",
                "critical: only for an analysis with a judge"
            ),
            (
                "judge: {confidence: 2}", "weight: 1", "tide/compare.yaml:7:23: ",
                "spec.judge.confidence: expected a number from 0.5"
            ),
        ])
    func badJudgedAnalyses(_ judge: String, _ extra: String, _ location: String, _ message: String) async throws {
        let h = try Harness()
        let manifest = Self.judged.replacingOccurrences(of: "judge: {pass: 90, marginal: 50}", with: judge)
            .replacingOccurrences(
                of: "      select: result.samples\n", with: "      select: result.samples\n      \(extra)\n")
        try await h.fixture.commit("bad", files: ["tide/compare.yaml": manifest])
        let report = try await h.pass()
        #expect(
            report.rejected.contains { $0.description.hasPrefix(location) && $0.description.contains(message) },
            "\(report.rejected)")
    }
}
