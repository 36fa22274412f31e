import Foundation
import Testing
import TideEngine
import TideExecutors
import TideManifest
import TideState
import TideTestSupport

/// The seeds' rollback triggers in a few lines, measured against a real HTTP server.
@Suite("TideEngine: analysis over HTTP decides a canary")
struct ProviderAnalysisTests {
    static func analysis(_ url: String) -> String {
        """
        apiVersion: tide/v1
        kind: Analysis
        metadata: {name: synthetic}
        spec:
          metrics:
            - name: requests
              provider: {probe: {url: "\(url)", requests: 40, concurrency: 4, timeout: 15s}}
              failureCondition: "result.errorRate > 0.05 || result.p99 > 15000"
            - name: budget
              provider: {http: {url: "\(url.replacingOccurrences(of: "/{{version}}", with: "/json"))"}}
              successCondition: "result.errors / result.total < 0.05"

        """
    }

    static func service(_ version: String) -> String {
        serviceYAML("payments", version: version).replacingOccurrences(
            of: "  executor: local\n",
            with: """
                  executor: local
                  strategy:
                    type: canary
                    steps: [{setWeight: 10}, {analysis: synthetic}, {setWeight: 50}]

                """)
    }

    /// The probe's URL names the candidate's version: `{{version}}` is filled in per target.
    func run(candidate: String) async throws -> (Harness, ReconcileReport) {
        let server = try HTTPFixture()
        let h = try Harness()
        try await h.fixture.commit(
            "canary",
            files: [
                "services/payments.yaml": Self.service("ok-1"),
                "tide/analysis.yaml": Self.analysis(server.url("/{{version}}")),
            ])
        _ = try await h.pass()
        try await h.fixture.commit(candidate, files: ["services/payments.yaml": Self.service(candidate)])
        let report = try await h.pass()
        return (h, report)
    }

    @Test("a candidate failing 30 % of requests is caught by the probe and rolled back")
    func flakyCandidate() async throws {
        let (h, report) = try await run(candidate: "flaky")
        let outcome = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(outcome.result == .failed)
        #expect(outcome.message?.contains("analysis synthetic failed") == true)
        #expect(outcome.message?.contains("\"errorRate\":0.3") == true, "\(outcome.message ?? "")")
        #expect(await h.live("payments")?.phase == .rolledBack)
        #expect(await h.live("payments")?.version == "ok-1")
    }

    @Test("a healthy candidate passes both metrics and is promoted")
    func healthyCandidate() async throws {
        let (h, report) = try await run(candidate: "ok-2")
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .deployed)
        #expect(
            h.executor.requests.filter { $0.service == "payments" }.map { "\($0.action.rawValue) \($0.weight)" } == [
                "deploy 0", "health 0", "set-weight 10", "set-weight 50", "promote 100", "health 100",
            ])
        #expect(await h.live("payments")?.version == "ok-2")
    }

    @Test("the seeds' third trigger: a health check failing 3 times in a row rolls back")
    func healthFailingInARow() async throws {
        let server = try HTTPFixture()
        let h = try Harness()
        let health = """
            apiVersion: tide/v1
            kind: Analysis
            metadata: {name: synthetic}
            spec:
              interval: 10s
              count: 6
              consecutiveErrorLimit: 2          # the third error in a row fails the analysis
              metrics:
                - name: health
                  provider: {http: {url: "\(server.url("/status/503"))", timeout: 5s}}
                  successCondition: "true"

            """
        try await h.fixture.commit(
            "canary", files: ["services/payments.yaml": Self.service("ok-1"), "tide/analysis.yaml": health])
        _ = try await h.pass()
        try await h.fixture.commit("ok-2", files: ["services/payments.yaml": Self.service("ok-2")])
        var rounds: [String] = []
        for _ in 0..<3 {
            let report = try await h.pass()
            let run = await h.live("payments")?.rollout?.analysis
            rounds.append("\(report.outcomes.first?.result.rawValue ?? "-") \(run?.consecutiveErrors ?? -1)")
            h.clock.advance(by: 10 - 60)  // a pass advances 60 s; the next round is due 10 s later
        }
        #expect(rounds.prefix(2) == ["progressing 1", "progressing 2"], "\(rounds)")
        #expect(rounds.last?.hasPrefix("failed") == true, "\(rounds)")
        #expect(await h.live("payments")?.phase == .rolledBack)
        let failed = await h.live("payments")?.failed?.message ?? ""
        #expect(failed.contains("3 measurement errors in a row"), "\(failed)")
        #expect(failed.contains("503"), "\(failed)")
    }
}
