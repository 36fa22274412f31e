import Foundation
import Testing
import TideTestSupport

/// `/metrics` as an on-call person alerts on it, through a real `tide run`, and the shipped alerting rules through
/// promtool.
@Suite("tide run: metrics an on-call person can alert on")
struct ServiceMetricsTests {
    /// `api` as a canary that rolls back by itself.
    static func canary(_ version: String) -> String {
        ConfigRepo.service("api", version).replacingOccurrences(
            of: "  executor: script\n",
            with: "  executor: script\n  strategy: {type: canary, steps: [{setWeight: 50}]}\n"
                + "  rollback: {automatic: true}\n")
    }

    static func value(_ metrics: String, _ series: String) -> Double? {
        metrics.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap {
            Double($0.split(separator: " ").last ?? "")
        }
    }

    @Test("counters exist at 0 before their first event; a rollback, a held version and a rejected head are told apart")
    func truthfulMetrics() async throws {
        let remote = try await detached { try ServiceTests.Remote() }
        try await remote.repo.fixture.commit("canary", files: ["api.yaml": Self.canary("1.0.0")])
        let daemon = try await remote.daemon(["--interval", "1s"])
        #expect(await daemon.waitForLog("info pass "), "\(daemon.log())")
        var metrics = try await daemon.get("/metrics").body
        let api = #"service="api",environment="prod""#
        for series in [
            #"tide_deployments_total{\#(api),class="FEATURE",result="failed"}"#,
            #"tide_deployments_total{\#(api),class="CONFIG",result="succeeded"}"#,
            "tide_rollbacks_total{\(api)}", "tide_approvals_total{\(api)}",
            #"tide_executor_actions_total{action="rollback",result="succeeded"}"#,
            #"tide_reconcile_passes_total{result="held"}"#, #"tide_reconcile_passes_total{result="rejected"}"#,
            "tide_revisions_rejected_total", "tide_head_rejected", #"tide_push_failures_total{reason="rejected"}"#,
            #"tide_webhook_refusals_total{provider="github",reason="unauthorized"}"#,
            #"tide_targets{state="stuck"}"#, #"tide_operator_requests_total{verb="abort",result="done"}"#,
        ] {
            #expect(Self.value(metrics, series) == 0, "\(series) is not there at 0:\n\(metrics)")
        }
        #expect(metrics.contains(#"tide_build_info{version="#))
        #expect(Self.value(metrics, #"tide_deployments_total{\#(api),class="FEATURE",result="succeeded"}"#) == 1)
        #expect(Self.value(metrics, #"tide_target_state{\#(api),state="deployed"}"#) == 1, "\(metrics)")

        // A bad canary: failed, rolled back, and then held — later passes are "held", not "failed".
        try await remote.repo.fixture.commit("api bad", files: ["api.yaml": Self.canary("bad")])
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            metrics = try await daemon.get("/metrics").body
            if Self.value(metrics, #"tide_reconcile_passes_total{result="held"}"#) ?? 0 >= 2 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(Self.value(metrics, #"tide_deployments_total{\#(api),class="FEATURE",result="failed"}"#) == 1)
        #expect(Self.value(metrics, "tide_rollbacks_total{\(api)}") == 1)
        #expect(Self.value(metrics, #"tide_executor_actions_total{action="rollback",result="succeeded"}"#) == 1)
        #expect(Self.value(metrics, #"tide_target_state{\#(api),state="held"}"#) == 1, "\(metrics)")
        #expect(Self.value(metrics, #"tide_reconcile_passes_total{result="failed"}"#) == 1, "\(metrics)")
        #expect((Self.value(metrics, #"tide_reconcile_passes_total{result="held"}"#) ?? 0) >= 2, "\(metrics)")

        // A rejected head: counted as rejected, said in the log once, and exposed as a gauge.
        try await remote.repo.fixture.commit("broken", files: ["web.yaml": "apiVersion: tide/v1\nkind: Service\n"])
        let rejectedBy = Date().addingTimeInterval(30)
        while Date() < rejectedBy {
            metrics = try await daemon.get("/metrics").body
            if Self.value(metrics, "tide_head_rejected") == 1 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(Self.value(metrics, "tide_head_rejected") == 1, "\(metrics)")
        #expect(Self.value(metrics, "tide_revisions_rejected_total") == 1)
        #expect((Self.value(metrics, #"tide_reconcile_passes_total{result="rejected"}"#) ?? 0) >= 1)
        #expect(daemon.log().components(separatedBy: "revision rejected").count == 2, "\(daemon.log())")
        let promtool = try await runProcess("/usr/bin/promtool", ["check", "metrics"], input: metrics)
        #expect(promtool.status == 0, "\(promtool.combined)")
        #expect(await daemon.stop() == 0)
    }

    @Test("deploy/tide.service runs as its own user, sandboxed: systemd-analyze security rates it 4.5 or better")
    func unitSandboxing() throws {
        let unit = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/tide.service").path
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        for line in ["User=tide", "ProtectSystem=strict", "ReadWritePaths=/var/lib/tide", "CapabilityBoundingSet=\n"] {
            #expect(text.contains(line), "\(line) is missing")
        }
        let analyze = try runProcess("/usr/bin/systemd-analyze", ["security", "--offline=yes", unit])
        let overall = analyze.standardOutput.split(separator: "\n").first { $0.contains("Overall exposure level") }
        let score = overall.flatMap { line in
            line.split(separator: " ").compactMap { Double($0) }.first
        }
        #expect(score.map { $0 <= 4.5 } == true, "\(analyze.combined)")
    }

    @Test("deploy/tide-alerts.yaml passes promtool check rules and its unit tests")
    func alertingRules() throws {
        let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy").path
        let check = try runProcess("/usr/bin/promtool", ["check", "rules", "tide-alerts.yaml"], in: deploy)
        #expect(check.status == 0, "\(check.combined)")
        let test = try runProcess("/usr/bin/promtool", ["test", "rules", "tide-alerts.test.yaml"], in: deploy)
        #expect(test.status == 0, "\(test.combined)")
    }
}
