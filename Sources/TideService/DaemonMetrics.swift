import CoreMetrics
import Foundation
import Metrics
import Prometheus
import TideEngine
import TideManifest
import TideMetrics
import TideState

/// What `tide run` exposes on `/metrics`: counters and histograms through swift-metrics into a Prometheus registry
/// of its own (no global bootstrap, so tests can run many daemons in one process), plus gauges read from the state
/// at scrape time (one `tide_target_info` series per target, the applied revision, the DORA figures).
public final class DaemonMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    let state = StateMetrics()

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
        registerAtZero()
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
        "tide_reconcile_passes_total":
            "Reconcile passes, by result: success, failed (a target failed in the pass), rejected (the head is "
            + "rejected), held (a failed version waits for a person), error (the pass could not run), interrupted.",
        "tide_reconcile_pass_duration_seconds": "How long reconcile passes took.",
        "tide_executor_actions_total": "Executor actions, by action and result (succeeded, failed, interrupted).",
        "tide_executor_action_duration_seconds": "How long executor actions took, by action.",
        "tide_fetches_total": "Fetches of the remote config repo, by result (success, failure).",
        "tide_webhook_requests_total": "Webhook requests, by provider and HTTP status answered.",
        "tide_webhook_refusals_total": "Webhook requests refused, by provider and reason.",
        "tide_operator_requests_total": "Operator verbs carried out for the CLI, by verb and result.",
    ]

    /// Pass results, executor action results, fetch results: every series exists from the start, at 0.
    static let passResults = ["success", "failed", "rejected", "held", "error", "interrupted"]
    static let actionResults = ["succeeded", "failed", "interrupted"]
    static let refusals = ["unauthorized", "malformed", "too-large", "replayed"]
    static let verbs = OperatorRequest.Verb.allCases.map(\.rawValue)

    /// Registers every counter series at 0, so the first event of each is an increase Prometheus sees.
    private func registerAtZero() {
        for result in Self.passResults {
            _ = Metrics.Counter(
                label: "tide_reconcile_passes_total", dimensions: [("result", result)], factory: factory)
        }
        for action in ExecutorAction.allCases {
            for result in Self.actionResults {
                _ = Metrics.Counter(
                    label: "tide_executor_actions_total",
                    dimensions: [("action", action.rawValue), ("result", result)],
                    factory: factory)
            }
        }
        for result in ["success", "failure"] {
            _ = Metrics.Counter(label: "tide_fetches_total", dimensions: [("result", result)], factory: factory)
        }
        for provider in WebhookProvider.allCases {
            for reason in Self.refusals {
                _ = Metrics.Counter(
                    label: "tide_webhook_refusals_total",
                    dimensions: [("provider", provider.rawValue), ("reason", reason)],
                    factory: factory)
            }
        }
        for verb in Self.verbs {
            for result in ["done", "refused"] {
                _ = Metrics.Counter(
                    label: "tide_operator_requests_total", dimensions: [("verb", verb), ("result", result)],
                    factory: factory)
            }
        }
    }

    func webhookRefused(provider: String, reason: String) {
        Metrics.Counter(
            label: "tide_webhook_refusals_total", dimensions: [("provider", provider), ("reason", reason)],
            factory: factory
        ).increment()
    }

    /// The exposition: the registry's series (with HELP lines added), build info, then what is read from the state.
    func exposition(store: any StateStore, health: DaemonHealth, desired: DesiredState?) async -> String {
        var text = ""
        for line in registry.emitToString().split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.split(separator: " ").dropFirst(2).first,
                let help = Self.help[String(name)]
            {
                text += "# HELP \(name) \(help)\n"
            }
            text += line + "\n"
        }
        while text.hasSuffix("\n\n") { text.removeLast() }
        text += "# HELP tide_build_info The tide binary serving, value 1.\n# TYPE tide_build_info gauge\n"
        text += "tide_build_info{version=\"\(Self.version)\"} 1\n"
        text += await state.render(store: store, health: health, desired: desired, now: Date())
        return text
    }

    /// This binary's version (`tide --version`).
    public static let version = "0.1.0"
}
