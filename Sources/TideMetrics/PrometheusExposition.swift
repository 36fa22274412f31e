/// Renders a DORA report in the Prometheus text exposition format (for node_exporter's textfile collector).
/// Values that cannot be computed are left out rather than written as 0. Medians and 90th percentiles are gauges
/// with a `statistic` label (a `quantile` label belongs to summaries only; promtool refuses it on a gauge).
public enum PrometheusExposition {
    public static func render(_ report: DoraReport, environment: String?, service: String?) -> String {
        let labels = "environment=\"\(escape(environment ?? "production"))\",service=\"\(escape(service ?? "all"))\""
        var out = ""
        func metric(_ name: String, _ help: String, _ samples: [(extra: String, value: Double?)]) {
            let present = samples.compactMap { sample in sample.value.map { (sample.extra, $0) } }
            guard !present.isEmpty else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for (extra, value) in present {
                out += "\(name){\(labels)\(extra)} \(format(value))\n"
            }
        }
        metric("tide_dora_deployments", "Deployments that finished in the window.", [("", Double(report.deployments))])
        metric(
            "tide_dora_deployment_frequency_per_day", "Successful deployments per day in the window.",
            [("", report.deploymentFrequency.perDay)])
        metric(
            "tide_dora_lead_time_seconds", "Change lead time: commit to running in the environment.",
            [
                (",statistic=\"median\"", report.leadTime.medianSeconds),
                (",statistic=\"p90\"", report.leadTime.p90Seconds),
            ])
        metric(
            "tide_dora_change_failure_rate", "Share of deployments that needed intervention.",
            [("", report.changeFailureRate.value)])
        metric(
            "tide_dora_failed_deployments", "Deployments that needed intervention.",
            [("", Double(report.changeFailureRate.failed))])
        metric(
            "tide_dora_recovery_time_seconds", "Failed deployment recovery time.",
            [(",statistic=\"median\"", report.recoveryTime.medianSeconds)])
        metric(
            "tide_dora_rework_rate", "Share of deployments that were unplanned fixes.", [("", report.reworkRate.value)])
        return out
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
