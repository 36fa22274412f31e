import Foundation
import Testing
import TideEngine
import TideExecutors
import TideManifest
import TideState
import TideTestSupport

/// Analyses as Argo Rollouts defines them: frozen with the steps, errors never counted as measurements, a
/// background analysis that keeps measuring, dry-run metrics, consecutiveSuccessLimit, failureLimit -1, and
/// `tide promote` past an analysis a person was asked to decide on.
@Suite("TideEngine: analyses frozen with the steps, and Argo's knobs")
struct AnalysisSemanticsTests {
    let strategies = StrategyTests()

    /// An analysis `errors` with the given extra spec lines (two-space indented), and one metric of its own.
    static func analysis(_ spec: String, metric: String = "") -> String {
        """
        apiVersion: tide/v1
        kind: Analysis
        metadata: {name: errors}
        spec:
        \(spec)  metrics:
            - name: error-rate
              provider: {command: {command: ["/usr/local/bin/error-rate"]}}
              successCondition: "result < 0.01"
              failureCondition: "result >= 0.05"
        \(metric)
        """
    }

    static let canary = "    type: canary\n    steps: [{setWeight: 10}, {analysis: errors}, {setWeight: 50}]\n"

    func started(_ analysis: String, strategy: String = canary) async throws -> Harness {
        try await strategies.started(strategy, extra: ["tide/analysis.yaml": analysis])
    }

    @Test("an edited Analysis pre-empts the rollout that runs it, as an edited step does")
    func editedAnalysisPreempts() async throws {
        let h = try await started(Self.analysis("  interval: 1m\n  count: 10\n"))
        _ = try await h.pass()
        #expect(await h.live("payments")?.rollout?.plan?.analyses?["errors"] != nil)
        try await h.fixture.commit(
            "count 1", files: ["tide/analysis.yaml": Self.analysis("  interval: 1m\n  count: 1\n")])
        let report = try await h.pass()
        #expect(
            report.outcomes.first?.message?.contains("analysis errors changed while 2.1.0 rolled out") == true,
            "\(report.outcomes)")
        let superseded = await h.store.events(EventQuery(kinds: [.deploymentSuperseded], limit: 10))
        #expect(superseded.map(\.version) == ["2.1.0"])
        #expect(h.calls(of: "payments").first == "rollback 2.0.0 100")
    }

    @Test("an edited inline analysis of a running step pre-empts it too")
    func editedInlineAnalysisPreempts() async throws {
        let inline = { (count: Int) in
            "    type: canary\n    steps:\n      - setWeight: 10\n      - analysis:\n          count: \(count)\n"
                + "          interval: 1m\n          metrics:\n            - name: m\n"
                + "              provider: {command: {command: [/usr/local/bin/m]}}\n"
                + "              successCondition: \"result < 1\"\n"
        }
        let h = try await strategies.started(inline(10))
        _ = try await h.pass()
        try await h.fixture.commit(
            "inline count 1", files: ["services/payments.yaml": StrategyTests.service("2.1.0", strategy: inline(1))])
        let report = try await h.pass()
        #expect(
            report.outcomes.first?.message?.contains("changed while 2.1.0 rolled out") == true, "\(report.outcomes)")
    }

    @Test(
        "errors are not measurements: count 5 needs five rounds without an error, errors bounded by consecutiveErrorLimit"
    )
    func errorsDoNotCount() async throws {
        let h = try await started(Self.analysis("  interval: 1m\n  count: 5\n  consecutiveErrorLimit: 4\n"))
        // Four rounds of errors, then successes.
        let errors = ErrorScript(first: 4)
        h.executor.fail(when: { $0.action == .measure && errors.next() }, with: .exited(2))
        _ = try await h.pass()
        var passes = 0
        while await h.live("payments")?.phase == .progressing, passes < 20 {
            _ = try await h.pass()
            passes += 1
        }
        let events = await h.store.events(EventQuery(service: "payments", limit: 1000))
        let passed = try #require(
            events.first { $0.message.contains("analysis errors: passed") }, "\(events.map(\.message))")
        #expect(passed.message.contains("5/5 rounds, 5 ok"), "\(passed.message)")
        #expect(passed.message.contains("4 errors"), "\(passed.message)")
        #expect(await h.live("payments")?.version == "2.1.0")
    }

    @Test("a background analysis without count keeps measuring until promotion")
    func backgroundWithoutCount() async throws {
        let background =
            "    type: canary\n    backgroundAnalysis: errors\n"
            + "    steps: [{setWeight: 10}, {pause: 10m}, {setWeight: 50}, {pause: 10m}]\n"
        let h = try await started(Self.analysis("  interval: 2m\n"), strategy: background)
        for _ in 0..<12 { _ = try await h.pass() }
        // Twelve minutes of the 20-minute rollout, one round every two minutes: it is still measuring.
        let live = try #require(await h.live("payments"))
        #expect(live.phase == .progressing)
        let run = try #require(live.rollout?.background)
        #expect(run.rounds >= 5, "\(run.rounds) rounds")
        #expect(h.executor.requests.filter { $0.action == .measure }.count <= 1, "one round a pass at most")
    }

    @Test("a dry-run metric is measured and shown but never decides")
    func dryRun() async throws {
        let dry = """
                - name: experimental
                  dryRun: true
                  provider: {command: {command: ["/usr/local/bin/experimental"]}}
                  successCondition: "result < 0.01"

            """
        let h = try await started(Self.analysis("  interval: 1m\n  count: 2\n", metric: dry))
        h.executor.fail(
            when: { $0.action == .measure && $0.weight == 10 && Self.isExperimental($0) }, with: .exited(3))
        for _ in 0..<6 { _ = try await h.pass() }
        #expect(await h.live("payments")?.version == "2.1.0", "the dry-run metric's errors decided nothing")
    }

    static func isExperimental(_ request: ActionRequest) -> Bool {
        // The metric is named in TIDE_METRIC; the recording executor sees the request only: tell them apart by id.
        request.actionID.contains("experimental")
    }

    @Test("consecutiveSuccessLimit passes the analysis early; failureLimit -1 never fails on the count")
    func successLimitAndNoFailureLimit() async throws {
        let h = try await started(
            Self.analysis("  interval: 1m\n  count: 20\n  consecutiveSuccessLimit: 2\n  failureLimit: -1\n"))
        // Two failing rounds, then successes: with failureLimit -1 it does not fail; two successes in a row pass.
        let failures = ErrorScript(first: 2)
        h.executor.respond(when: { $0.action == .measure && failures.next() }, with: "0.5")
        for _ in 0..<8 { _ = try await h.pass() }
        let events = await h.store.events(EventQuery(service: "payments", limit: 1000))
        #expect(events.contains { $0.message.contains("2 round(s) in a row succeeded") }, "\(events.map(\.message))")
        #expect(await h.live("payments")?.version == "2.1.0")
    }

    @Test("tide promote moves past an analysis that paused the rollout for a person (Argo Rollouts #261)")
    func promotePastInconclusive() async throws {
        let h = try await started(Self.analysis("  interval: 1m\n  count: 1\n"))
        h.executor.respond(when: { $0.action == .measure }, with: "0.03")  // neither condition: inconclusive
        _ = try await h.pass()
        var live = try #require(await h.live("payments"))
        #expect(live.rollout?.paused == true, "\(String(describing: live.rollout))")
        let answer = try await h.reconciler.control(
            .promote(full: false), service: "payments", environment: "prod", by: "dana")
        #expect(answer.contains("promoted past step 2/3: analysis errors"), "\(answer)")
        _ = try await h.pass()
        live = try #require(await h.live("payments"))
        #expect(h.calls(of: "payments").contains("set-weight 2.1.0 50"), "\(h.calls(of: "payments"))")
    }
}

/// Answers true for the first `first` calls, then false.
final class ErrorScript: @unchecked Sendable {
    private var left: Int
    private let lock = NSLock()

    init(first: Int) { left = first }

    func next() -> Bool {
        lock.withLock {
            defer { left -= 1 }
            return left > 0
        }
    }
}
