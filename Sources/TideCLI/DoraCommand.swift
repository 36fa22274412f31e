import ArgumentParser
import Foundation
import TideDocuments
import TideManifest
import TideMetrics
import TideState

/// `tide dora`: delivery performance from Tide's own deployment ledger.
struct DoraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dora",
        abstract: "Deployment frequency, lead time, change failure rate, recovery time and rework rate.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, prometheus
    }

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("env"), help: "Only this environment (default: every production environment).")
    var environment: String?

    @Option(name: .long, help: "Only this service.")
    var service: String?

    @Option(name: .long, help: "The window: this long up to now, like 30d, 12h or 2w.")
    var since: String?

    @Option(name: .long, help: "Window start (YYYY-MM-DD or an ISO 8601 time, UTC); with --to, instead of --since.")
    var from: String?

    @Option(name: .long, help: "Window end (exclusive; default now).")
    var to: String?

    @Flag(name: .long, help: "Same as --format json.")
    var json = false

    @Option(name: .long, help: "table, json or prometheus.")
    var format: Format = .table

    func validate() throws {
        if since != nil && (from != nil || to != nil) {
            throw ValidationError("use either --since or --from/--to, not both")
        }
        if let since, Self.seconds(since) == nil {
            throw ValidationError(
                "--since: '\(since)' is not a duration of at most 3650d (write it like 30d, 12h or 2w)")
        }
        for (name, value) in [("--from", from), ("--to", to)] {
            if let value, Self.date(value) == nil {
                throw ValidationError("\(name): '\(value)' is not a date (write 2026-11-01 or 2026-11-01T09:00:00Z)")
            }
        }
    }

    /// A window of at most ten years (a longer one reads nothing more and would only cost time).
    static func seconds(_ text: String) -> Double? {
        if text.hasSuffix("w"), let weeks = Double(text.dropLast()), weeks > 0,
            weeks * 7 * 86_400 <= ManifestDuration.maximum
        {
            return weeks * 7 * 86_400
        }
        return ManifestDuration.seconds(text).flatMap { $0 > 0 ? $0 : nil }
    }

    static func date(_ text: String) -> Date? {
        let full = ISO8601DateFormatter()
        if let date = full.date(from: text) { return date }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        return day.date(from: text)
    }

    func run() async throws {
        let repository = try? global.openRepository()
        let store = try global.openStore(for: repository)
        let now = Date()
        let end = to.flatMap(Self.date) ?? now
        let start: Date
        if let from {
            start = Self.date(from)!  // validated
        } else {
            start = end.addingTimeInterval(-(since.flatMap(Self.seconds) ?? 30 * 86_400))
        }
        guard start < end else { throw ValidationError("the window is empty: --from must be before --to") }
        let filter = DeploymentFilter(from: start, to: end, environment: environment, service: service)
        let calculator = DoraCalculator(store: store)
        let report = try await calculator.report(filter)
        var previousFilter = filter
        previousFilter.to = start
        previousFilter.from = start.addingTimeInterval(-end.timeIntervalSince(start))
        let previous = try await calculator.report(previousFilter)

        switch json ? .json : format {
        case .json:
            try printJSON(DoraDocument(report: report, previous: previous))
        case .prometheus:
            print(PrometheusExposition.render(report, environment: environment, service: service), terminator: "")
        case .table:
            printTable(report, previous: previous)
        }
    }

    private func printTable(_ report: DoraReport, previous: DoraReport) {
        let scope = [
            environment.map { "environment \($0)" } ?? "production environments", service.map { "service \($0)" },
        ]
        .compactMap { $0 }.joined(separator: ", ")
        print(
            "DORA metrics for \(scope), \(iso(report.window.from)) → \(iso(report.window.to)): "
                + "\(report.deployments) deployment(s)")
        let rows: [[String]] = [
            [
                "Deployment frequency",
                report.deploymentFrequency.perDay.map {
                    "\(Self.number($0))/day (\(report.deploymentFrequency.bucket?.rawValue ?? "-"))"
                } ?? "n/a",
                report.deploymentFrequency.band?.rawValue ?? "-",
                Self.delta(report.deploymentFrequency.perDay, previous.deploymentFrequency.perDay) {
                    "\(Self.number($0))/day"
                },
            ],
            [
                "Change lead time (median)",
                report.leadTime.medianSeconds.map(Self.duration) ?? "n/a",
                report.leadTime.band?.rawValue ?? "-",
                Self.delta(report.leadTime.medianSeconds, previous.leadTime.medianSeconds, Self.duration),
            ],
            [
                "Change lead time (p90)", report.leadTime.p90Seconds.map(Self.duration) ?? "n/a", "",
                Self.delta(report.leadTime.p90Seconds, previous.leadTime.p90Seconds, Self.duration),
            ],
            [
                "Change failure rate",
                report.changeFailureRate.value.map { "\(Self.percent($0)) (\(report.changeFailureRate.failed) failed)" }
                    ?? "n/a",
                report.changeFailureRate.band?.rawValue ?? "-",
                Self.delta(report.changeFailureRate.value, previous.changeFailureRate.value) { Self.percent($0) },
            ],
            [
                "Failed deployment recovery time",
                report.recoveryTime.medianSeconds.map(Self.duration) ?? "n/a",
                report.recoveryTime.band?.rawValue ?? "-",
                Self.delta(report.recoveryTime.medianSeconds, previous.recoveryTime.medianSeconds, Self.duration),
            ],
            [
                "Deployment rework rate",
                report.reworkRate.value.map { "\(Self.percent($0)) (\(report.reworkRate.unplanned) unplanned)" }
                    ?? "n/a",
                "",
                Self.delta(report.reworkRate.value, previous.reworkRate.value) { Self.percent($0) },
            ],
        ]
        print(table(["METRIC", "VALUE", "BAND (DORA 2024)", "VS PREVIOUS WINDOW"], rows))
        for warning in report.warnings { print("warning: \(warning)") }
    }

    static func delta(_ now: Double?, _ before: Double?, _ format: (Double) -> String) -> String {
        guard let now, let before else { return before == nil && now != nil ? "new" : "-" }
        let change = now - before
        if abs(change) < 1e-9 { return "same" }
        return (change > 0 ? "+" : "-") + format(abs(change))
    }

    static func number(_ value: Double) -> String {
        String(format: value >= 10 ? "%.0f" : "%.2f", value)
    }

    static func percent(_ value: Double) -> String {
        String(format: "%.1f%%", value * 100)
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return "\(Int(seconds.rounded()))s" }
        if seconds < 3600 { return "\(Int((seconds / 60).rounded()))m" }
        if seconds < 86_400 { return String(format: "%.1fh", seconds / 3600) }
        return String(format: "%.1fd", seconds / 86_400)
    }
}
