import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

@Suite("TideEngine: analysis steps")
struct AnalysisTests {
    static let analysis = """
        apiVersion: tide/v1
        kind: Analysis
        metadata: {name: error-budget}
        spec:
          interval: 1m
          count: 3
          failureLimit: 0
          inconclusiveLimit: 0
          metrics:
            - name: error-rate
              provider: {command: {command: ["/usr/local/bin/error-rate"]}}
              successCondition: "result < 0.01"
              failureCondition: "result >= 0.05"

        """

    static func service(_ version: String) -> String {
        serviceYAML("payments", version: version).replacingOccurrences(
            of: "  executor: local\n",
            with: """
                  executor: local
                  strategy:
                    type: canary
                    steps: [{setWeight: 20}, {analysis: error-budget}, {setWeight: 60}]

                """)
    }

    func started(rate: String) async throws -> Harness {
        let h = try Harness()
        try await h.fixture.commit(
            "canary", files: ["services/payments.yaml": Self.service("2.0.0"), "tide/analysis.yaml": Self.analysis])
        _ = try await h.pass()
        h.executor.respond(when: { $0.action == .measure }, with: rate)
        try await h.fixture.commit("2.1.0", files: ["services/payments.yaml": Self.service("2.1.0")])
        return h
    }

    @Test("three good measurements a minute apart let the canary go on")
    func passes() async throws {
        let h = try await started(rate: "0.002\n")
        var report = try await h.pass()
        #expect(
            h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 20", "measure 2.1.0 20"])
        #expect(report.outcomes.first?.message?.contains("analysis error-budget: 1/3 rounds, 1 ok") == true)
        let measurement = h.executor.requests.last { $0.action == .measure }
        #expect(measurement?.weight == 20)
        // pass() moves the clock a minute: each pass finds the next round due.
        report = try await h.pass()
        #expect(h.calls(of: "payments") == ["measure 2.1.0 20"])
        report = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "measure 2.1.0 20", "set-weight 2.1.0 60", "promote 2.1.0 100", "health 2.1.0 100",
            ])
        #expect(await h.live("payments")?.version == "2.1.0")
    }

    @Test("a failed measurement aborts the canary and returns traffic to stable")
    func fails() async throws {
        let h = try await started(rate: "0.3")
        let report = try await h.pass()
        #expect(h.calls(of: "payments").suffix(2) == ["rollback 2.0.0 100", "health 2.0.0 100"])
        #expect(
            report.outcomes.first?.message?.contains("analysis error-budget failed: 1 failed measurement(s)") == true)
        #expect(report.outcomes.first?.message?.contains("error-rate = 0.3") == true)
        #expect(await h.live("payments")?.phase == .rolledBack)
    }

    @Test("no data is inconclusive, not a success: the rollout pauses for a person")
    func noData() async throws {
        let h = try await started(rate: "")
        let report = try await h.pass()
        #expect(report.outcomes.first?.result == .progressing)
        #expect(report.outcomes.first?.message?.contains("inconclusive (error-rate: no data)") == true)
        #expect(await h.live("payments")?.rollout?.paused == true)
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        _ = try await h.reconciler.control(.resume, service: "payments", environment: "prod", by: "dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments").contains("measure 2.1.0 20"))
    }

    @Test("between the conditions is inconclusive")
    func between() async throws {
        let h = try await started(rate: "0.02")
        let report = try await h.pass()
        #expect(report.outcomes.first?.message?.contains("meets neither condition") == true)
    }

    @Test("an undefined analysis is a manifest error")
    func undefined() throws {
        let fixture = try GitFixture()
        let id = try fixture.commit(
            "x", files: ["base.yaml": executorYAML, "payments.yaml": Self.service("1.0.0")])
        #expect {
            try ManifestLoader().load(
                from: GitCommitSource(repository: try Repository.open(at: fixture.repoPath), commit: id, root: ""))
        } throws: { error in
            "\(error)".contains("analysis 'error-budget' is not defined")
        }
    }
}
