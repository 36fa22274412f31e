import ArgumentParser
import Foundation
import TideEngine

/// `tide reconcile`: one pass.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile", abstract: "Run one reconcile pass: deploy what changed, remove what is gone.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Seconds to wait for another tide process holding the state lock.")
    var lockTimeout: Double = 60

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        let reconciler = try global.reconciler()
        let report = try await reconciler.reconcile(lockTimeout: lockTimeout)
        if json {
            try printJSON(report)
            if report.hasFailures { throw ReportedFailure() }
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
            case .waiting: versions = "\(outcome.toVersion ?? "-")"
            case .unchanged, .held: continue
            }
            let classification = outcome.classification.map { " [\($0.rawValue)]" } ?? ""
            let line =
                "\(outcome.target): \(outcome.result.rawValue) \(versions)\(classification)"
                + (outcome.message.map { ": \($0)" } ?? "")
            if outcome.result == .failed || outcome.result == .blocked { printError(line) } else { print(line) }
        }
        for promotion in report.promotions {
            print(
                "\(promotion.service)@\(promotion.environment): promoted \(promotion.version) from "
                    + "\(promotion.from.joined(separator: ", ")) in commit \(promotion.commit.short)")
        }
        for outcome in report.outcomes where outcome.result == .held {
            printError("\(outcome.target): held: \(outcome.message ?? "")")
        }
        let summary = [TargetOutcome.Result.deployed, .removed, .waiting, .failed, .blocked, .held, .unchanged]
            .compactMap { result in counts[result].map { "\($0) \(result.rawValue)" } }
            .joined(separator: ", ")
        print("\(report.applied?.short ?? report.head.short): \(summary.isEmpty ? "no targets" : summary)")
        if report.hasFailures { throw ReportedFailure() }
    }
}
