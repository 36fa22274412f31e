import ArgumentParser
import Foundation
import TideEngine
import TideExecutors
import TideManifest
import TideState

/// `tide readiness SERVICE --env E`: the seeds' readiness checklist, for the version desired there now.
struct ReadinessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readiness",
        abstract: "PASS/FAIL report of the release gates for the version of a service desired in an environment.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The service.")
    var service: String

    @Option(name: .customLong("env"), help: "The environment.")
    var environment: String

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    struct Check: Encodable {
        var name: String
        var pass: Bool
        var detail: String
    }

    struct Output: Encodable {
        var service: String
        var environment: String
        var version: String
        var classification: String?
        var risk: String?
        var ready: Bool
        var checks: [Check]
    }

    func run() async throws {
        let reconciler = try global.reconciler()
        let (resolution, plan) = try await reconciler.plan()
        guard let desired = resolution.desired, let plan else {
            throw ReportedFailure(
                message: "tide: error: no valid revision to check (\(resolution.head.short) is rejected)")
        }
        let id = TargetID(service: service, environment: environment)
        guard let target = desired.target(id), let env = desired.environments[environment],
            let action = plan.actions.first(where: { $0.target == id })
        else {
            throw ReportedFailure(message: "tide: error: \(service) does not run in \(environment)")
        }
        let change = action.classification ?? .feature
        let evaluator = GateEvaluator(desired: desired, store: reconciler.store, now: reconciler.clock.now())
        let gates = try await evaluator.gates(for: target, classification: change)
        func gate(_ kinds: [Gate.Kind], name: String, pass: String) -> Check {
            let held = gates.filter { kinds.contains($0.kind) }
            return Check(
                name: name, pass: held.isEmpty,
                detail: held.isEmpty ? pass : held.map(\.reason).joined(separator: "; "))
        }
        let live = try await reconciler.store.liveTarget(id)
        var checks: [Check] = []
        let strategy = (desired.services[service]?.strategy.type ?? .recreate).rawValue
        let analysisNames = desired.services[service]?.strategy.analyses ?? []
        if !env.production {
            checks.append(
                Check(name: "analysis defined for production", pass: true, detail: "not a production environment"))
        } else if analysisNames.isEmpty {
            checks.append(
                Check(
                    name: "analysis defined for production", pass: false,
                    detail: "the \(strategy) strategy has no analysis step"))
        } else {
            checks.append(
                Check(
                    name: "analysis defined for production", pass: true,
                    detail: "analysis \(analysisNames.joined(separator: ", "))"))
        }
        let previous = try await reconciler.store.deployments(DeploymentQuery(target: id, limit: 50))
            .first { $0.succeeded && $0.version != target.version }
        var rollback = Check(
            name: "rollback path", pass: true,
            detail: previous.map { "git revert returns to \($0.version) (no schema migrations to undo)" }
                ?? (live?.version == nil ? "first deployment here: a revert removes it" : "no earlier version here"))
        var statuses: [String: MigrationStatus]?
        if !target.migrations.isEmpty {
            do {
                statuses = try await reconciler.migrations.migrationStatuses(environment: environment, desired: desired)
            } catch {
                rollback.pass = false
                rollback.detail =
                    "cannot read the migration history in \(environment) (\(error)); see migration database below"
            }
        }
        if let statuses {
            // Before contract a rollback runs expand's down; after it, going back past the migration is refused.
            let running = live?.migrations ?? []
            let contracted = target.migrations.filter { statuses[$0]?.contract != nil && !running.contains($0) }
            let pending = target.migrations.filter {
                desired.migrations[$0]?.contract != nil && statuses[$0]?.contract == nil
            }
            if !contracted.isEmpty {
                rollback.pass = false
                rollback.detail =
                    "migration \(contracted.joined(separator: ", ")) is already contracted here: a rollback past it "
                    + "would be refused (roll forward)"
            } else {
                rollback.detail =
                    (previous.map { "git revert returns to \($0.version)" } ?? "a revert removes it")
                    + (pending.isEmpty
                        ? ""
                        : "; the contract of \(pending.joined(separator: ", ")) has not run: a rollback runs "
                            + "expand's down after the app")
            }
        }
        checks.append(rollback)
        checks += await executorChecks(desired: desired, target: target, live: live, reconciler: reconciler)
        checks.append(
            gate(
                [.requires, .bake], name: "previous environments healthy and baked",
                pass: env.requires.isEmpty ? "requires no environment" : "\(env.requires.joined(separator: ", ")) ok"))
        checks.append(gate([.window, .freeze], name: "inside a deployment window", pass: "open now"))
        checks.append(gate([.approval], name: "approvals present", pass: "none needed, or approved"))
        checks.append(gate([.policy], name: "policies met", pass: desired.policies.isEmpty ? "no policies" : "met"))
        let output = Output(
            service: service, environment: environment, version: target.version, classification: change.rawValue,
            risk: action.risk?.rawValue, ready: checks.allSatisfy(\.pass), checks: checks)
        if json {
            try printJSON(output)
        } else {
            print(
                "Readiness of \(service) \(target.version) for \(environment) [\(change.rawValue), \(action.risk?.rawValue ?? "-") risk]"
            )
            print(
                table(["CHECK", "RESULT", "DETAIL"], checks.map { [$0.name, $0.pass ? "PASS" : "FAIL", $0.detail] }))
            print(output.ready ? "READY" : "NOT READY")
        }
        if !output.ready { throw ReportedFailure() }
    }

    /// What the target's executor, and the database of each migration it needs, require on this machine.
    private func executorChecks(
        desired: DesiredState, target: DesiredTarget, live: LiveTarget?, reconciler: Reconciler
    ) async -> [Check] {
        // Where the executors run and what they run, as a deployment gets them: the fixed working directory, and
        // the revision's own files for relative programs.
        let factory = global.executorFactory(reconciler.repository)
        let readiness = ExecutorReadiness(workingDirectory: factory.workingDirectory)
        var found: [ReadinessCheck] = []
        if let declared = desired.executors[target.executor] {
            let executor: ExecutorManifest
            do {
                executor = try factory.resolvingPrograms(declared, revision: desired.revision?.hex)
            } catch {
                return [Check(name: "executor program", pass: false, detail: "\(declared.name): \(error)")]
            }
            // During a rollout the stable side is the version it started from; otherwise what runs.
            let stable: String?
            if let rollout = live?.rollout { stable = rollout.previousVersion } else { stable = live?.version }
            found += await readiness.checks(
                executor,
                for: ReadinessTarget(id: target.id, version: target.version, stable: stable, config: target.config))
        } else {
            found.append(
                ReadinessCheck(
                    name: "executor", pass: false,
                    detail: "executor \(target.executor) is not defined: define it (kind: Executor)"))
        }
        var databases: [String] = []
        for name in target.migrations {
            guard let executor = desired.migrations[name]?.executor, !databases.contains(executor) else { continue }
            databases.append(executor)
        }
        for name in databases {
            guard let executor = desired.executors[name] else { continue }
            found.append(await readiness.database(executor, environment: target.id.environment))
        }
        return found.map { Check(name: $0.name, pass: $0.pass, detail: $0.detail) }
    }
}
