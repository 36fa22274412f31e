import ArgumentParser
import Foundation
import TideEngine
import TideManifest

/// `tide reconcile`: one pass.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile", abstract: "Run one reconcile pass: deploy what changed, remove what is gone.")

    @OptionGroup var global: GlobalOptions

    @Option(
        name: .customLong("lock-timeout"),
        help: "How long to wait for another tide process holding the state lock: seconds (60) or a duration (2m).")
    var lockTimeoutText = "60"

    /// `--lock-timeout` in seconds, read as durations are (`ManifestDuration`: decimal seconds or `2m`; not
    /// `0x10`, which Swift's `Double` would take).
    var lockTimeout: Double { ManifestDuration.seconds(lockTimeoutText) ?? -1 }

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Option(name: .long, help: "How many targets a pass runs at once (independent ones; the rest wait their turn).")
    var concurrency: Int = 16

    @Flag(
        name: .long,
        help: "Keep reconciling, sleeping until the next pause ends or gate opens, until every target is settled.")
    var watch = false

    func validate() throws {
        guard lockTimeout.isFinite, (0...86_400).contains(lockTimeout) else {
            throw ValidationError(
                "--lock-timeout: give seconds from 0 to 86400, or a duration like 2m (not '\(lockTimeoutText)')")
        }
    }

    func run() async throws {
        guard concurrency >= 1 && concurrency <= 1024 else {
            throw ValidationError("--concurrency: give a number from 1 to 1024")
        }
        let reconciler = try await global.fetchedReconciler(concurrency: concurrency)
        var report = try await reconciler.reconcile(lockTimeout: lockTimeout)
        while watch, let due = report.nextDue {
            try show(report, final: false)
            print("next pass at \(iso(due))")
            try await Monotonic.sleep(seconds: max(0.2, due.timeIntervalSinceNow) + 0.05)
            report = try await reconciler.reconcile(lockTimeout: lockTimeout)
        }
        try show(report, final: true)
    }

    /// Prints a pass; the final one decides the exit status.
    private func show(_ report: ReconcileReport, final: Bool) throws {
        if json {
            try printJSON(report)
            if final && report.hasFailures { throw ReportedFailure() }
            return
        }
        if !report.rejected.isEmpty {
            printError("revision \(report.head.short) is rejected; nothing from it was applied:")
            for diagnostic in report.rejected { printError(diagnostic.description) }
            if let applied = report.applied {
                printError("keeping the last good revision \(applied.short)")
            }
        }
        var counts: [TargetOutcome.Result: Int] = [:]
        for outcome in report.outcomes {
            counts[outcome.result, default: 0] += 1
            let versions: String
            switch outcome.result {
            case .deployed, .failed, .blocked:
                versions = "\(outcome.fromVersion ?? "-") → \(outcome.toVersion ?? "-")"
            case .removed: versions = "\(outcome.fromVersion ?? "-") → (removed)"
            case .waiting, .progressing, .suspended: versions = "\(outcome.toVersion ?? "-")"
            case .unchanged, .held: continue
            }
            let classification = outcome.classification.map { " [\($0.rawValue)]" } ?? ""
            var line =
                "\(outcome.target): \(outcome.result.rawValue) \(versions)\(classification)"
                + (outcome.message.map { ": \($0)" } ?? "")
            if outcome.result == .waiting, let message = outcome.message, message.hasPrefix("waiting") {
                line = "\(outcome.target): \(versions)\(classification) \(message)"  // no "waiting …: waiting for"
            }
            if outcome.result == .failed || outcome.result == .blocked { printError(line) } else { print(line) }
        }
        for promotion in report.promotions {
            print(
                "\(promotion.service)@\(promotion.environment): promoted \(promotion.version) from "
                    + "\(promotion.from.joined(separator: ", ")) in commit \(promotion.commit.short)")
        }
        for promotion in report.scheduledPromotions {
            print(
                "\(promotion.service)@\(promotion.environment): promote \(promotion.version) from "
                    + "\(promotion.from.joined(separator: ", ")) at \(iso(promotion.due)) (bake)")
        }
        for migration in report.migrations {
            let line =
                migration.result == .leftAlone
                ? "\(migration.migration)@\(migration.environment): left alone: \(migration.message)"
                : "\(migration.migration)@\(migration.environment): \(migration.phase) \(migration.result.rawValue): "
                    + migration.message
            if migration.result == .failed { printError(line) } else { print(line) }
        }
        for outcome in report.outcomes where outcome.result == .held {
            printError("\(outcome.target): held: \(outcome.message ?? "")")
        }
        let summary = [
            TargetOutcome.Result.deployed, .progressing, .removed, .waiting, .failed, .blocked, .held, .unchanged,
        ]
        .compactMap { result in counts[result].map { "\($0) \(result.rawValue)" } }
        .joined(separator: ", ")
        print("\(report.applied?.short ?? report.head.short): \(summary.isEmpty ? "no targets" : summary)")
        if final && report.hasFailures { throw ReportedFailure() }
    }
}
