import ArgumentParser
import Foundation
import TideDocuments
import TideEngine
import TideGit
import TideManifest

/// `tide plan`: what a reconcile pass would do, without doing it.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Show the actions that would take live state to desired state.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Print the plan as JSON.")
    var json = false

    @Flag(name: .long, help: "List unchanged targets too.")
    var all = false

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, markdown
    }

    @Option(name: .long, help: "table, json, or markdown (the rollout plan as a document people can review).")
    var format: Format = .table

    func run() async throws {
        let reconciler = try await global.fetchedReconciler(readOnly: true)
        let (resolution, plan) = try await reconciler.plan()
        if format == .markdown, let desired = resolution.desired, let plan {
            print(PlanMarkdown.render(plan: plan, desired: desired, rejected: resolution.rejected))
            if !resolution.rejected.isEmpty { throw ReportedFailure() }
            return
        }
        if json || format == .json {
            try printJSON(PlanDocument(resolution: resolution, plan: plan))
            if !resolution.rejected.isEmpty { throw ReportedFailure() }
            return
        }
        if !resolution.rejected.isEmpty {
            printError("revision \(resolution.head.short) is rejected:")
            for diagnostic in resolution.rejected { printError(diagnostic.description) }
        }
        guard let plan else {
            throw ReportedFailure(message: "tide: no valid revision to plan from")
        }
        for warning in resolution.desired?.warnings ?? [] { printError("warning: \(warning)") }
        let shown =
            all ? plan.actions : plan.pending + plan.actions.filter { $0.kind == .holdFailed || $0.kind == .refuse }
        print(
            "Plan for \(plan.revision.short)\(resolution.rejected.isEmpty ? "" : " (last good revision)"): "
                + "\(plan.pending.count) to change, \(plan.actions.count - plan.pending.count) unchanged"
                + (plan.migrations.isEmpty ? "" : ", \(plan.migrations.count) migration phase(s) due or waiting"))
        if !shown.isEmpty {
            print(
                table(
                    ["TARGET", "ACTION", "FROM", "TO", "CLASS", "RISK", "REASON"],
                    shown.map {
                        [
                            $0.target.description, $0.kind.rawValue, $0.fromVersion ?? "-", $0.toVersion ?? "-",
                            $0.classification?.rawValue ?? "-", $0.risk?.rawValue ?? "-",
                            $0.gates.isEmpty
                                ? $0.reason ?? "" : "waits: " + $0.gates.map(\.reason).joined(separator: "; "),
                        ]
                    }))
        }
        for pin in plan.pins { print("note: \(pin.description)") }
        for entry in plan.migrations {
            print(
                "\(entry.migration) (\(entry.executor), \(entry.environments.joined(separator: ","))): \(entry.next)")
            for statement in entry.statements { print("    \(statement)") }
        }
        for promotion in plan.promotions {
            print(
                "\(promotion.service)@\(promotion.environment): promote \(promotion.version) from "
                    + "\(promotion.from.joined(separator: ", ")) at \(iso(promotion.due)) (promotion: auto, after the bake)"
            )
        }
        if !resolution.rejected.isEmpty { throw ReportedFailure() }
    }
}
