import Foundation
public import TideEngine
public import TideManifest
import TideState

/// The deployment plan as the seed playbooks write it: per target, a rollout table (step, action, success
/// criteria, rollback trigger), the gates, and the rollback plan.
public enum PlanMarkdown {
    public static func render(plan: Plan, desired: DesiredState, rejected: [Diagnostic]) -> String {
        var out = "# Deployment plan for \(plan.revision.short)\n\n"
        if !rejected.isEmpty {
            out += "> The branch head is rejected; this is the plan of the last good revision. Problems:\n"
            for diagnostic in rejected { out += "> - `\(diagnostic)`\n" }
            out += "\n"
        }
        for action in plan.actions where action.kind == .refuse {
            out += "> **\(action.target) is refused**: \(action.reason ?? "")\n\n"
        }
        for warning in desired.warnings { out += "> warning: `\(warning)`\n" }
        if !desired.warnings.isEmpty { out += "\n" }
        let changes = plan.pending
        if changes.isEmpty {
            out += "Nothing to change: every target runs its desired version.\n"
            return out
        }
        out += "| target | change | class | risk | status |\n|---|---|---|---|---|\n"
        for action in changes {
            let status =
                action.gates.isEmpty
                ? action.kind.rawValue : "waiting: " + action.gates.map(\.kind.rawValue).joined(separator: ", ")
            out +=
                "| \(action.target) | \(action.fromVersion ?? "–") → \(action.toVersion ?? "(removed)") | "
                + "\(action.classification?.rawValue ?? "–") | \(action.risk?.rawValue ?? "–") | \(status) |\n"
        }
        for action in changes {
            out += "\n## \(action.target): \(action.fromVersion ?? "–") → \(action.toVersion ?? "(removed)")\n\n"
            if let reason = action.reason { out += "Why: \(reason).\n\n" }
            if !action.gates.isEmpty {
                out += "Gates holding it:\n\n"
                for gate in action.gates {
                    out +=
                        "- **\(gate.kind.rawValue)**: \(gate.reason)"
                        + (gate.until.map { " (opens \(Document.iso($0)))" } ?? "") + "\n"
                }
                out += "\n"
            }
            guard action.kind != .remove, let service = desired.services[action.target.service] else {
                out += "The executor's `remove` action takes it down.\n"
                continue
            }
            if let target = desired.target(action.target), !target.migrations.isEmpty {
                out += "Migrations in \(action.target.environment)'s database:\n\n"
                for name in target.migrations {
                    guard let migration = desired.migrations[name] else { continue }
                    var phases: [String] = []
                    if let expand = migration.expand {
                        phases.append("expand (\(expand.up.count) statement(s)) before the rollout, unless applied")
                    }
                    if migration.backfill != nil { phases.append("backfill right after expand") }
                    if let contract = migration.contract {
                        phases.append(
                            "contract once every service listing it runs its new version, "
                                + "\(ManifestDuration.format(contract.after)) after; no rollback past it")
                    }
                    out += "- **\(name)** (executor \(migration.executor)): " + phases.joined(separator: "; ") + "\n"
                }
                out += "\n"
            }
            out += rolloutTable(service: service, desired: desired, firstDeployment: action.fromVersion == nil)
            out += "\nRollback plan: "
            if let previous = action.fromVersion {
                out +=
                    "`tide rollback \(action.target.service) --env \(action.target.environment)` (or `git revert` "
                    + "of this change) returns to \(previous) on the fast path, past every gate"
                out +=
                    service.rollback.automatic || service.strategy.engine.keepsStable
                    ? "; a failing step returns traffic to \(previous) automatically"
                        + (service.rollback.writeBack == .revert ? " and reverts the change in git" : "") + ".\n"
                    : ".\n"
            } else {
                out += "first deployment here: nothing to roll back to; a revert removes it.\n"
            }
            if let target = desired.target(action.target), !target.migrations.isEmpty {
                out +=
                    "Before contract, a rollback runs the app back first, then expand's `down`; after contract, "
                    + "Tide refuses to go back past it (roll forward).\n"
            }
        }
        return out
    }

    private static func rolloutTable(service: ServiceManifest, desired: DesiredState, firstDeployment: Bool) -> String {
        var rows: [[String]] = []
        let health = "the executor's `health` exits 0"
        let plan = RolloutPlan.of(service.strategy, firstDeployment: firstDeployment)
        let keepsStable = plan.keepsStable
        let trigger =
            service.rollback.automatic || keepsStable
            ? "step fails → `rollback` to stable" : "step fails → target Failed, version held"
        for (index, step) in plan.steps.map(\.step).enumerated() {
            switch step {
            case .action(.deploy, let weight, _) where keepsStable:
                rows.append(["deploy", "start the candidate beside stable (\(weight) %)", "exit 0", trigger])
            case .action(.deploy, _, _):
                rows.append(["deploy", "stop old, start new (100 %)", "exit 0", trigger])
            case .action(.health, _, _):
                let what = index == 1 ? (keepsStable ? "the candidate" : "the new version") : "it"
                rows.append(["health", "check \(what)", health, trigger])
            case .action(.setWeight, let weight, _):
                let share =
                    plan.strategy == .rolling
                    ? "replace \(weight) % of the instances" : "send \(weight) % of traffic to the candidate"
                rows.append(["set-weight", share, "exit 0", trigger])
            case .action(.mirror, let weight, _):
                rows.append([
                    "mirror", "mirror \(weight) % of traffic to the candidate (answers discarded)", "exit 0", trigger,
                ])
            case .action(.split, _, let traffic):
                var match = "?"
                if case .object(let fields)? = traffic, let value = fields["match"] { match = value.canonicalJSON }
                rows.append(["split", "send requests matching `\(match)` to the candidate", "exit 0", trigger])
            case .action(.promote, _, _):
                let what =
                    plan.strategy == .blueGreen
                    ? "switch all traffic to the candidate" : "make the candidate stable (100 %)"
                rows.append(["promote", what, "exit 0", trigger])
            case .action(.scaleDown, _, _):
                rows.append(["scale-down", "stop the old side", "exit 0", "–"])
            case .action(let other, let weight, _):
                rows.append([other.rawValue, "\(weight) %", "exit 0", trigger])
            case .pause(let seconds?):
                rows.append(["pause", "wait \(ManifestDuration.format(seconds))", "time passes", "`tide abort`"])
            case .pause(nil):
                rows.append(["pause", "wait for a person", "`tide promote`", "`tide abort`"])
            case .analysis(let name):
                let analysis = desired.analyses[name]
                if let analysis, let judge = analysis.judge {
                    let metrics = analysis.metrics.map { metric in
                        "\(metric.name) (\(metric.direction.rawValue) is worse"
                            + (metric.critical ? ", critical" : "")
                            + (metric.weight != 1 ? ", weight \(metric.weight)" : "")
                            + ")"
                    }
                    rows.append([
                        "analysis \(name)",
                        "\(analysis.count) × every \(ManifestDuration.format(analysis.interval)), canary vs baseline",
                        "Mann-Whitney at \(judge.confidence * 100)% per metric: \(metrics.joined(separator: ", ")); "
                            + "score ≥ \(judge.pass) passes",
                        "score < \(judge.marginal) or a critical metric failing → `rollback`; marginal → pause",
                    ])
                    continue
                }
                let criteria =
                    analysis?.metrics.map { metric in
                        "\(metric.name): "
                            + [
                                metric.successCondition.map { "success if `\($0)`" },
                                metric.failureCondition.map { "fail if `\($0)`" },
                            ].compactMap { $0 }.joined(separator: ", ")
                    }.joined(separator: "; ") ?? name
                let limits =
                    analysis.map {
                        "\($0.count) × every \(ManifestDuration.format($0.interval)); more than \($0.failureLimit) failed → rollback"
                    } ?? ""
                rows.append(["analysis \(name)", limits, criteria, "failures → `rollback`; inconclusive → pause"])
            }
        }
        var table = "| step | action | success criteria | rollback trigger |\n|---|---|---|---|\n"
        for (index, row) in rows.enumerated() {
            table += "| \(index + 1). \(row[0]) | \(row[1]) | \(row[2]) | \(row[3]) |\n"
        }
        return table
    }
}
