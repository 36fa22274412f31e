import CoreMetrics
import Foundation
import Metrics
import Prometheus
import TideMetrics
import TideState

/// What `tide run` exposes on `/metrics`: counters and histograms through swift-metrics into a Prometheus registry
/// of its own (no global bootstrap, so tests can run many daemons in one process), plus gauges read from the state
/// at scrape time (one `tide_target_info` series per target, the applied revision, the DORA figures).
public final class DaemonMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["tide_reconcile_pass_duration_seconds"] = [
            .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5),
            .seconds(15), .seconds(60), .seconds(300), .seconds(900),
        ]
        factory.durationHistogramBuckets["tide_executor_action_duration_seconds"] = [
            .milliseconds(10), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
            .seconds(120), .seconds(600),
        ]
        self.factory = factory
    }

    func pass(result: String, duration: Duration) {
        Metrics.Counter(label: "tide_reconcile_passes_total", dimensions: [("result", result)], factory: factory)
            .increment()
        Metrics.Timer(label: "tide_reconcile_pass_duration_seconds", dimensions: [], factory: factory)
            .record(duration: duration)
    }

    func action(_ action: String, result: String, duration: Duration) {
        Metrics.Counter(
            label: "tide_executor_actions_total", dimensions: [("action", action), ("result", result)],
            factory: factory
        ).increment()
        Metrics.Timer(
            label: "tide_executor_action_duration_seconds", dimensions: [("action", action)], factory: factory
        ).record(duration: duration)
    }

    func fetch(result: String) {
        Metrics.Counter(label: "tide_fetches_total", dimensions: [("result", result)], factory: factory).increment()
    }

    func operatorRequest(_ verb: String, result: String) {
        Metrics.Counter(
            label: "tide_operator_requests_total", dimensions: [("verb", verb), ("result", result)], factory: factory
        ).increment()
    }

    func webhook(provider: String, result: String) {
        Metrics.Counter(
            label: "tide_webhook_requests_total", dimensions: [("provider", provider), ("result", result)],
            factory: factory
        ).increment()
    }

    /// The HELP text of the series made through swift-metrics (whose factory passes none).
    static let help: [String: String] = [
        "tide_reconcile_passes_total": "Reconcile passes, by result (success, failed, rejected, error, interrupted).",
        "tide_reconcile_pass_duration_seconds": "How long reconcile passes took.",
        "tide_executor_actions_total": "Executor actions, by action and result (succeeded, failed, interrupted).",
        "tide_executor_action_duration_seconds": "How long executor actions took, by action.",
        "tide_fetches_total": "Fetches of the remote config repo, by result (success, failure).",
        "tide_webhook_requests_total": "Webhook requests, by provider and HTTP status answered.",
    ]

    /// The exposition: the registry's series (with HELP lines added), then the ones read from the state now.
    func exposition(store: any StateStore) async -> String {
        var text = ""
        for line in registry.emitToString().split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.split(separator: " ").dropFirst(2).first,
                let help = Self.help[String(name)]
            {
                text += "# HELP \(name) \(help)\n"
            }
            text += line + "\n"
        }
        if text.hasSuffix("\n\n") { text.removeLast() }
        text += await stateGauges(store: store)
        return text
    }

    private func stateGauges(store: any StateStore) async -> String {
        var out = ""
        if let targets = try? await store.liveTargets(), !targets.isEmpty {
            out += "# HELP tide_target_info What runs where: one series per target, value 1.\n"
            out += "# TYPE tide_target_info gauge\n"
            for target in targets.sorted(by: { ($0.id.service, $0.id.environment) < ($1.id.service, $1.id.environment) }
            ) {
                out +=
                    "tide_target_info{service=\"\(escape(target.id.service))\","
                    + "environment=\"\(escape(target.id.environment))\",phase=\"\(escape(target.phase.rawValue))\","
                    + "version=\"\(escape(target.version ?? ""))\"} 1\n"
            }
        }
        if let status = try? await store.repositoryStatus(), let revision = status.lastGoodRevision {
            out += "# HELP tide_applied_revision_info The revision applied (the last good one), value 1.\n"
            out += "# TYPE tide_applied_revision_info gauge\n"
            out += "tide_applied_revision_info{revision=\"\(revision.hex)\"} 1\n"
            if let at = status.lastGoodAt {
                out += "# HELP tide_applied_revision_timestamp_seconds When the applied revision was accepted.\n"
                out += "# TYPE tide_applied_revision_timestamp_seconds gauge\n"
                out += "tide_applied_revision_timestamp_seconds \(at.timeIntervalSince1970)\n"
            }
        }
        if let source = try? await store.sourceStatus() {
            out += "# HELP tide_fetch_failing Whether the last fetch of the config repo failed (1) or not (0).\n"
            out += "# TYPE tide_fetch_failing gauge\n"
            out += "tide_fetch_failing \(source.lastFetchError == nil ? 0 : 1)\n"
            // From the state, so they survive a restart and agree with tide status.
            for (name, help, date) in [
                (
                    "tide_fetch_last_success_timestamp_seconds", "When the config repo was last fetched successfully.",
                    source.lastFetchSuccessAt
                ),
                (
                    "tide_fetch_last_attempt_timestamp_seconds", "When a fetch of the config repo was last tried.",
                    source.lastFetchAt
                ),
            ] {
                guard let date else { continue }
                out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name) \(date.timeIntervalSince1970)\n"
            }
        }
        let now = Date()
        let filter = DeploymentFilter(from: now.addingTimeInterval(-30 * 86400), to: now)
        if let report = try? await DoraCalculator(store: store).report(filter) {
            out += PrometheusExposition.render(report, environment: nil, service: nil)
        }
        return out
    }

    private func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
