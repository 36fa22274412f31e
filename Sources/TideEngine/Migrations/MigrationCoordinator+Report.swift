public import Foundation
import TideExecutors
import TideManifest
public import TideState

/// Where one migration stands in one database, for `tide migrations`, `tide plan` and `tide status --json`.
public struct MigrationReportEntry: Sendable, Hashable, Codable {
    /// The sql executor, and the environments that share its database here.
    public var executor: String
    public var environments: [String]
    public var migration: String
    /// pending (not applied yet), expanded, backfilled, contracted, or "PHASE half done".
    public var phase: String
    /// A phase that stopped half way: how far it got, and why.
    public var halfDone: String?
    /// Other installs that recorded they use it, each with "uses" (it holds the contract) or "ready".
    public var usedBy: [String: String] = [:]
    /// The install that applied it (nil: not applied, or applied before owners were recorded).
    public var owner: String?
    /// Whether this install may act on it.
    public var ours: Bool
    /// Live targets whose running (or rolling out) version needs it.
    public var runningOn: [String]
    /// Desired targets whose version lists it.
    public var wantedBy: [String]
    /// What Tide will do next by itself, or why it will not: "in use", "contract at …", "contract waits: …",
    /// "down due: …", "left alone: …".
    public var next: String
    /// When that is due, for a timed contract.
    public var due: Date?
    /// The statements a due or waiting contract or down will run, so a plan shows them before they run.
    public var statements: [String] = []
    /// The statements its down would run (the recorded one, or the fix after a failed down).
    public var down: [String] = []
}

/// Why a person's `tide migrations down` cannot run.
public struct MigrationCommandError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

extension MigrationCoordinator {
    /// Every migration in every database this desired state reaches (optionally one environment's), applied or
    /// still pending, with what Tide will do about it next and why.
    public func migrationReport(environment: String? = nil) async throws -> [MigrationReportEntry] {
        guard let desired = try await resolver.resolve(record: false).desired else { return [] }
        return try await migrationReport(
            desired: desired, live: try await store.liveTargets(), environment: environment)
    }

    func migrationReport(
        desired: DesiredState, live: [LiveTarget], environment: String? = nil
    ) async throws -> [MigrationReportEntry] {
        let owner = try await migrationOwner()
        var entries: [MigrationReportEntry] = []
        for entry in try await decideMigrations(desired: desired, live: live, now: clock.now()) {
            defer { if let database = entry.database { Task { await database.close() } } }
            let group = entry.group
            if let environment, !group.environments.contains(environment) { continue }
            let here = { (id: TargetID) in group.environments.contains(id.environment) }
            let decisions = Dictionary(entry.decisions.map { ($0.name, $0.decision) }, uniquingKeysWith: { a, _ in a })
            var names = Set(entry.statuses.filter { $0.value.isApplied }.keys)
            for target in desired.targets where here(target.id) {
                for name in target.migrations
                where desired.migrations[name].map({ group.names.contains($0.executor) }) == true {
                    names.insert(name)
                }
            }
            for name in names.sorted() {
                let status = entry.statuses[name] ?? MigrationStatus()
                let phase = entry.error != nil ? "unknown" : status.phaseName
                var (next, due) = Self.describe(decisions[name])
                if let error = entry.error { next = "cannot read the database: \(error)" }
                if !status.isApplied && entry.error == nil {
                    next = "expand runs before the first rollout that needs it"
                }
                if status.contract != nil { next = "contracted: rolling back past it is refused" }
                if status.partial?.phase == .contract, case .leftAlone? = decisions[name] {
                    next += " (the contract started: rolling back past it is refused)"
                }
                var statements: [String] = []
                switch decisions[name] {
                case .contract?, .contractWaits?, .contractBlocked?:
                    statements = desired.migrations[name]?.contract?.up ?? []
                case .down(let down, _)?: statements = down
                default: break
                }
                entries.append(
                    MigrationReportEntry(
                        executor: group.executor.name, environments: group.environments, migration: name,
                        phase: phase, owner: status.owner,
                        ours: status.isApplied ? owns(name, status, owner: owner, desired: desired) : true,
                        runningOn: live.filter {
                            here($0.id)
                                && ($0.migrations.contains(name) || $0.rollout?.migrations.contains(name) == true)
                        }.map(\.id.description),
                        wantedBy: desired.targets.filter { here($0.id) && $0.migrations.contains(name) }.map(
                            \.id.description),
                        next: next, due: due, statements: statements))
                entries[entries.count - 1].halfDone = status.partial?.summary
                if status.isApplied {
                    entries[entries.count - 1].down =
                        Self.downRun(status, current: desired.migrations[name], executors: group.names).statements
                }
                entries[entries.count - 1].usedBy = status.users.mapValues { $0 ? "ready" : "uses" }
            }
        }
        return entries
    }

    private static func describe(_ decision: MigrationDecision?) -> (String, Date?) {
        switch decision {
        case nil, .inUse?: return ("in use", nil)
        case .contract?: return ("contract due now", nil)
        case .contractWaits(let until)?: return ("contract at \(GateEvaluator.format(until))", until)
        case .contractBlocked(let why)?: return ("contract waits: \(why)", nil)
        case .down(_, let reason)?: return ("down due: \(reason)", nil)
        case .leftAlone(let why)?: return ("left alone: \(why)", nil)
        }
    }

    /// `tide migrations down NAME --env E`: a person decides to undo a migration's expand. Refused when it was
    /// contracted, belongs to another install, or a target runs or wants a version that needs it. The down that
    /// runs is the current manifest's when it still has the migration, else the one expand recorded.
    public func migrationDown(
        name: String, environment: String, by actor: Actor, confirmed: Bool = true
    ) async throws -> String {
        let who = actor.description
        return try await store.withExclusiveLock(timeout: 60) {
            guard let desired = try await resolver.resolve(record: false).desired else {
                throw MigrationCommandError(description: "no valid desired state to read the databases from")
            }
            let live = try await store.liveTargets()
            let owner = try await migrationOwner()
            let now = clock.now()
            for entry in try await decideMigrations(desired: desired, live: live, now: now) {
                defer { if let database = entry.database { Task { await database.close() } } }
                guard entry.group.environments.contains(environment), let database = entry.database,
                    let status = entry.statuses[name], status.isApplied
                else { continue }
                let group = entry.group
                if let contract = status.contract {
                    throw MigrationCommandError(
                        description: "\(name) was contracted in \(group.label) at "
                            + "\(GateEvaluator.format(contract.appliedAt)); a contracted migration cannot be undone "
                            + "(roll forward with a new migration)")
                }
                guard owns(name, status, owner: owner, desired: desired) else {
                    throw MigrationCommandError(
                        description: "\(name) in \(group.label) belongs to another install (\(status.owner ?? "?")); "
                            + "run this from that install")
                }
                let others = status.usedBy.filter { !owner.owns($0) }
                if !others.isEmpty {
                    throw MigrationCommandError(
                        description: "\(name) in \(group.label) is used by another install ("
                            + others.sorted().joined(separator: "; ") + "); it must stop needing it first")
                }
                let here = { (id: TargetID) in group.environments.contains(id.environment) }
                let needing =
                    live.filter {
                        here($0.id) && ($0.migrations.contains(name) || $0.rollout?.migrations.contains(name) == true)
                    }.map(\.id.description)
                    + desired.targets.filter { here($0.id) && $0.migrations.contains(name) }.map {
                        "\($0.id) (wants \($0.version))"
                    }
                if !needing.isEmpty {
                    throw MigrationCommandError(
                        description: "\(name) is still needed in \(group.label) by "
                            + Set(needing).sorted().joined(separator: ", ")
                            + "; roll those back (or forward to versions without it) first")
                }
                let run = Self.downRun(status, current: desired.migrations[name], executors: group.names)
                guard confirmed else {
                    throw MigrationCommandError(
                        description: "nothing done: the down of \(name) in \(group.label) would run\n"
                            + run.statements.map { "    \($0)" }.joined(separator: "\n")
                            + "\nand what it removes is gone for good — another migration (a renamed one) may use "
                            + "it too. Run again with --yes to undo it")
                }
                let revision = try repository.resolveCommit(branch: trackedBranch())
                let outcome = try await runDown(
                    name, run: run, reason: "undone by \(who) with tide migrations down",
                    database: database,
                    group: group, owner: owner, revision: revision, now: now)
                guard let outcome else { return "\(name) in \(group.label): already undone by another process" }
                if outcome.result == .failed { throw MigrationCommandError(description: outcome.message) }
                return outcome.message
            }
            throw MigrationCommandError(description: "\(name) is not applied in any database of \(environment)")
        }
    }
}
