import Foundation
public import TideExecutors
import TideGit
public import TideManifest
import TideState

/// Database migrations across rollouts: prepares a rollout's expands, refuses edited or lost ones, settles
/// contracts and downs after the pass, reports them, and carries out the `tide migrations` verbs.
public struct MigrationCoordinator: EngineCollaborator {
    let context: EngineContext
    let resolver: RevisionResolver
}

/// Whether a rollout's migrations are ready.
enum MigrationPreparation {
    case ready
    /// A permanent failure: the rollout does not start and the version is held.
    case failed(String)
    /// A transient database error: the rollout waits and the phase is retried.
    case retry(String)
}

/// Expand-contract migrations, coordinated with the rollouts that need them (DESIGN.md §3): expand (and
/// backfill) before the first rollout of a version that lists the migration; contracts and downs after a pass as
/// `MigrationDecision` rules them (Reconciler+MigrationSettle.swift); and no way back past a contract.
extension MigrationCoordinator {
    /// Expands and backfills, in `target`'s environment, the migrations its version needs; checks that no applied
    /// phase was edited since. Returns why the rollout cannot start, or nil.
    func prepareMigrations(
        for target: DesiredTarget, desired: DesiredState, revision: ObjectID
    ) async throws -> MigrationPreparation {
        guard !target.migrations.isEmpty else { return .ready }
        let environment = target.id.environment
        var databases: [String: any MigrationDatabase] = [:]
        defer {
            let open = Array(databases.values)
            Task { for database in open { await database.close() } }
        }
        let owner = try await migrationOwner()
        let live = try await store.liveTargets()
        for name in target.migrations {
            // The builder checked that the migration and its sql executor exist.
            guard let migration = desired.migrations[name], let executor = desired.executors[migration.executor] else {
                return .failed("migration \(name) is not defined")
            }
            let database: any MigrationDatabase
            do {
                if let open = databases[executor.name] {
                    database = open
                } else {
                    database = try await executors.openDatabase(executor, environment: environment)
                    databases[executor.name] = database
                }
                let status = MigrationStatus.fold(try await database.records())[name] ?? MigrationStatus()
                if let edited = Self.editedPhase(migration, status) { return .failed(edited) }
                if status.contractStarted != nil { continue }
                if let lost = Self.lostHistory(name, status, environment: environment, live: live) {
                    return .failed(lost)
                }
                // Another install's migration: its phases are its owner's to run; what is applied serves here too,
                // and the owner is told (a `use` row) so it never undoes it by itself while this install needs it.
                if status.isApplied, !owns(name, status, owner: owner, desired: desired) {
                    try await recordUse(name, status: status, database: database, owner: owner, revision: revision)
                    continue
                }
                let phases = try await expandAndBackfill(
                    name, migration, status: status, database: database, owner: owner, target: target, desired: desired,
                    revision: revision)
                if case .retry = phases { return phases }
            } catch let error as MigrationError where error.isTransient {
                // Out of reach, busy, or lost half way: nothing is undone (a batched backfill keeps its committed
                // rounds, a statement-by-statement phase is recorded half done), and the phase is tried again later.
                return .retry(
                    "migration \(name): \(environment): \(error)"
                        + (error.partial && error.done == nil ? " (the work committed so far is kept)" : ""))
            } catch let error as MigrationError where error.done != nil || error.partial {
                return .failed(
                    "migration \(name): \(environment): \(error); the rollout of \(target.version) did not start")
            } catch {
                // failBeforeRollout records it.
                return .failed(
                    "migration \(name): \(environment): \(error); the database is as before the phase, and the "
                        + "rollout of \(target.version) did not start")
            }
        }
        return .ready
    }

    /// Runs a migration's expand and backfill where they are due, each under the database's lock (and only while
    /// still due once it is held): `.ready`, or `.retry` while another process runs a phase statement by statement.
    private func expandAndBackfill(
        _ name: String, _ migration: MigrationManifest, status: MigrationStatus, database: any MigrationDatabase,
        owner: MigrationOwner, target: DesiredTarget, desired: DesiredState, revision: ObjectID
    ) async throws -> MigrationPreparation {
        let environment = target.id.environment
        for phaseName in [MigrationManifest.PhaseName.expand, .backfill] {
            guard let phase = migration.phase(phaseName), status.record(phaseName) == nil else { continue }
            let record = MigrationRecord(
                name: name, phase: phaseName == .expand ? .expand : .backfill, checksum: phase.checksum,
                revision: revision.hex, appliedAt: clock.now(), durationMilliseconds: 0,
                down: phaseName == .expand ? phase.down : [], owner: owner.record(environment: environment))
            var run = MigrationRun(phase)
            // A phase that stopped half way goes on from where it stopped.
            let resume = status.partial(phaseName)?.done ?? 0
            run.resumeFrom = resume
            let ran = try await database.apply(
                phase, run: run, record: record,
                due: { [owner] records in
                    // Still due once the lock is held, and still this install's to run: another install
                    // may have expanded it meanwhile (or gone on with a half-done phase).
                    let now = MigrationStatus.fold(records)[name] ?? MigrationStatus()
                    return now.record(phaseName) == nil && now.contractStarted == nil
                        && (now.owner.map(owner.owns) ?? true) && (now.partial(phaseName)?.done ?? 0) == resume
                })
            if ran {
                try await recordMigration(
                    .migrationApplied, target: target, revision: revision,
                    message: "migration \(name): \(phaseName.rawValue) applied in \(environment)"
                        + (resume > 0 ? " (went on from statement \(resume + 1))" : ""))
                continue
            }
            // Not due once the lock was held: another process did it. When that was another install, this
            // one uses what it applied — and says so, or its owner could undo it under this install.
            let now = MigrationStatus.fold(try await database.records())[name] ?? MigrationStatus()
            if now.isApplied, !owns(name, now, owner: owner, desired: desired) {
                try await recordUse(name, status: now, database: database, owner: owner, revision: revision)
                break
            }
            if now.partial(phaseName).map({ $0.done != resume }) == true {
                return .retry(
                    "migration \(name): \(environment): another Tide process is running its "
                        + "\(phaseName.rawValue) statement by statement")
            }
        }
        return .ready
    }

    /// A deployment whose migration has an applied phase the manifest no longer matches cannot start: the plan
    /// says so with the error reconcile gives (instead of "config changed"), and the pass refuses it, leaving the
    /// running version as it is. A database that cannot be read now is left to the rollout, which reports it.
    func refuseEditedMigrations(_ plan: inout Plan, desired: DesiredState) async {
        var statuses: [String: [String: MigrationStatus]] = [:]
        for index in plan.actions.indices where [.deploy, .wait].contains(plan.actions[index].kind) {
            let id = plan.actions[index].target
            guard let target = desired.target(id), !target.migrations.isEmpty else { continue }
            if statuses[id.environment] == nil {
                statuses[id.environment] =
                    (try? await migrationStatuses(environment: id.environment, desired: desired))
                    ?? [:]
            }
            for name in target.migrations {
                guard let migration = desired.migrations[name], let status = statuses[id.environment]?[name],
                    let edited = Self.editedPhase(migration, status)
                else { continue }
                plan.actions[index].kind = .refuse
                plan.actions[index].gates = []
                plan.actions[index].reason = edited
                break
            }
        }
    }

    /// This install's record says a live target here runs a version that needs `name`, but the database's history
    /// does not have it: the database was replaced (or restored from an older backup). Tide does not apply it again
    /// by itself over whatever the database holds now.
    static func lostHistory(
        _ name: String, _ status: MigrationStatus, environment: String, live: [LiveTarget]
    ) -> String? {
        guard !status.isApplied else { return nil }
        let running = live.filter {
            $0.id.environment == environment && $0.version != nil && $0.migrations.contains(name)
                && $0.migratedAt != nil
        }
        guard !running.isEmpty else { return nil }
        return "migration \(name): the database of \(environment) has no history of it, but "
            + running.map { "\($0.id) runs \($0.version ?? "-")" }.sorted().joined(separator: ", ")
            + ", which needs it (applied before): the database was replaced or restored from an older backup, and its "
            + "history went backwards. Tide does not apply it again by itself; check the database, then tide "
            + "migrations reapply \(name) --env \(environment) to expand it again"
    }

    /// Records that this install uses another install's migration (once): its owner neither contracts nor undoes
    /// it while the row holds.
    func recordUse(
        _ name: String, status: MigrationStatus, database: any MigrationDatabase, owner: MigrationOwner,
        revision: ObjectID, environment: String? = nil
    ) async throws {
        guard status.users[owner.id] != false else { return }
        let use = MigrationRecord(
            name: name, phase: .use, checksum: "-", revision: revision.hex, appliedAt: clock.now(),
            durationMilliseconds: 0, owner: owner.record(environment: environment ?? "-"))
        _ = try await database.apply(
            MigrationRun([]), record: use,
            due: { [owner] records in MigrationStatus.fold(records)[name]?.users[owner.id] != false })
    }

    /// An applied phase whose statements the manifest no longer matches.
    static func editedPhase(_ migration: MigrationManifest, _ status: MigrationStatus) -> String? {
        if let partial = status.partial, let phaseName = MigrationManifest.PhaseName(rawValue: partial.phase.rawValue),
            let phase = migration.phase(phaseName), let done = partial.doneChecksum,
            MigrationRun(phase).doneChecksum(partial.done) != done
        {
            return "migration \(migration.name): spec.\(phaseName.rawValue) stopped half way at "
                + "\(GateEvaluator.format(partial.at)) after \(partial.done) of its statements, and the first "
                + "\(partial.done) are not what it applied any more; only the statements after them may change "
                + "(undo the edit, or write a new migration)"
        }
        for phaseName in MigrationManifest.PhaseName.allCases {
            guard let applied = status.record(phaseName), let phase = migration.phase(phaseName),
                applied.checksum != phase.checksum
            else { continue }
            return "migration \(migration.name): spec.\(phaseName.rawValue) was applied at "
                + "\(GateEvaluator.format(applied.appliedAt)) (revision \(applied.revision.prefix(12))) with other "
                + "statements than it has now (checksum \(applied.checksum.prefix(12)), now "
                + "\(phase.checksum.prefix(12))); an applied phase cannot be edited: undo the edit, or write a new "
                + "migration"
        }
        return nil
    }

    private func recordMigration(
        _ kind: Event.Kind, target: DesiredTarget, revision: ObjectID, message: String
    ) async throws {
        try await journal.commit(
            StateWrite(
                events: [
                    Event(
                        time: clock.now(), kind: kind, target: target.id, revision: revision, version: target.version,
                        message: message)
                ]))
    }

    /// A migration phase hit a transient database error before a rollout: nothing is marked failed or undone;
    /// the target waits, and the phase is tried again with backoff (30 s, doubling to 10 min).
    func waitForDatabase(
        target: DesiredTarget, state: LiveTarget, revision: ObjectID, message: String
    ) async throws -> TargetOutcome {
        var state = state
        let now = clock.now()
        let attempt = state.migrationUse.retries
        let due = now.addingTimeInterval(min(600, 30 * pow(2, Double(min(attempt, 10)))))
        state.migrationUse.retries = attempt + 1
        state.migrationUse.retryAt = due
        let reason = "waiting for the database: \(message); retry at \(GateEvaluator.format(due))"
        let firstTime = state.waitingOn != [.database]
        state.waiting = reason
        state.waitingOn = [.database]
        state.updatedAt = now
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: firstTime
                    ? [
                        Event(
                            time: now, kind: .migrationFailed, target: target.id, revision: revision,
                            version: target.version, previousVersion: state.version,
                            message: "\(message); transient: nothing undone, retried with backoff")
                    ] : []))
        return TargetOutcome(
            target: target.id, result: .waiting, fromVersion: state.version, toVersion: target.version,
            classification: nil, message: reason, executorCalls: 0, nextDue: due)
    }

    /// A rollout that cannot start (a migration failed, or a rollback past a contract): the target keeps what
    /// runs, and the desired version is held as failed until desired state changes.
    func failBeforeRollout(
        target: DesiredTarget, state: LiveTarget, revision: ObjectID, message: String, calls: Int
    ) async throws -> TargetOutcome {
        var state = state
        let now = clock.now()
        state.failed = FailedAttempt(
            version: target.version, configDigest: target.configDigest, revision: revision, message: message, at: now)
        state.failed?.executorDigest = target.executorDigest
        state.phase = .failed
        state.updatedAt = now
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    Event(
                        time: now, kind: .migrationFailed, target: target.id, revision: revision,
                        version: target.version, previousVersion: state.version, message: message)
                ]))
        return TargetOutcome(
            target: target.id, result: .failed, fromVersion: state.version, toVersion: target.version,
            classification: nil, message: message, executorCalls: calls)
    }

    /// A rollout Tide will not start (a rollback past a contracted migration): the target keeps running what it
    /// runs — it stays Healthy at that version — and records the refusal, with an event once per reason.
    func refuse(_ action: PlannedAction, live: LiveTarget?, revision: ObjectID) async throws -> TargetOutcome {
        let now = clock.now()
        let reason = "refused \(action.toVersion ?? "-"): \(action.reason ?? "refused")"
        if var state = live, state.waiting != reason {
            state.waiting = reason
            state.waitingOn = [.refused]
            state.updatedAt = now
            try await journal.commit(
                StateWrite(
                    targets: [state],
                    events: [
                        Event(
                            time: now, kind: .rolloutRefused, target: action.target, revision: revision,
                            version: action.toVersion, previousVersion: action.fromVersion, message: reason)
                    ]))
        }
        return TargetOutcome(
            target: action.target, result: .held, fromVersion: action.fromVersion, toVersion: action.toVersion,
            classification: action.classification, message: reason, executorCalls: 0)
    }

    /// Per environment, the migrations contracted there (or whose contract started) that a target is to go
    /// without: a running version needs one and its desired version does not list it (a rollback), or its
    /// service lists one elsewhere and its version here does not (a new environment on a shared database, a fresh
    /// state file). The planner refuses those deployments.
    /// An environment whose databases cannot be read now is in `unreadable`, with why: the planner refuses the
    /// rollbacks there that would drop a migration (it cannot tell whether a contract ran), and the pass goes on.
    func contractedMigrations(
        desired: DesiredState, live: [LiveTarget]
    ) async -> (contracted: [String: [String: Date]], unreadable: [String: String]) {
        var result: [String: [String: Date]] = [:]
        var unreadable: [String: String] = [:]
        let dropping = live.filter { target in
            guard !target.migrations.isEmpty, let wanted = desired.target(target.id) else { return false }
            return target.migrations.contains { !wanted.migrations.contains($0) }
        }
        // (Only services that list migrations somewhere can miss one: the others are not looked at twice.)
        let listing = desired.services.filter { _, service in
            !service.migrations.isEmpty || service.environments.values.contains { $0.migrations != nil }
        }
        let missing = desired.targets.filter { target in
            listing[target.id.service] != nil
                && Self.listedElsewhere(target, desired: desired).contains { !target.migrations.contains($0) }
        }
        let environments = Set(dropping.map(\.id.environment)).union(missing.map(\.id.environment))
        let checked = await withTaskGroup(of: (String, Result<[String: MigrationStatus], any Error>).self) { tasks in
            for environment in environments.sorted() {
                let here = dropping.filter { $0.id.environment == environment }
                // The databases as the running versions knew them: a revert that takes the version back usually
                // removes the Migration — and its sql executor — from desired state too.
                var executors = desired.executors
                for target in here {
                    guard let revision = target.revision,
                        let then = try? loader.load(
                            from: GitCommitSource(repository: repository, commit: revision, root: root))
                    else { continue }
                    executors.merge(then.executors) { current, _ in current }
                }
                tasks.addTask { [executors] in
                    do {
                        return (
                            environment,
                            .success(
                                try await self.migrationStatuses(
                                    environment: environment, executors: executors))
                        )
                    } catch {
                        return (environment, .failure(error))
                    }
                }
            }
            var all: [(String, Result<[String: MigrationStatus], any Error>)] = []
            for await item in tasks { all.append(item) }
            return all
        }
        for (environment, outcome) in checked {
            switch outcome {
            case .failure(let error):
                unreadable[environment] = "\(error)"
            case .success(let statuses):
                let relevant = Set(dropping.filter { $0.id.environment == environment }.flatMap(\.migrations))
                    .union(
                        missing.filter { $0.id.environment == environment }.flatMap {
                            Self.listedElsewhere($0, desired: desired)
                        })
                for (name, status) in statuses where relevant.contains(name) {
                    if let started = status.contractStarted { result[environment, default: [:]][name] = started }
                }
            }
        }
        return (result, unreadable)
    }

    /// The migrations `target`'s service lists in any environment (its own list included).
    static func listedElsewhere(_ target: DesiredTarget, desired: DesiredState) -> Set<String> {
        guard let service = desired.services[target.id.service] else { return [] }
        return Set(service.migrations + service.environments.values.compactMap(\.migrations).joined())
    }

    /// What a target's migration use becomes when its running version goes from needing `old` to needing
    /// `new`: the databases are remembered; what it stops needing is released by a rollback (a down may become
    /// due) or abandoned otherwise (never undone by itself); what it needs again is neither.
    static func migrationUse(
        _ use: MigrationUse, from old: [String], to new: [String], rollback: Bool, service: ServiceManifest?,
        desired: DesiredState
    ) -> MigrationUse {
        var use = use
        let executors = new.compactMap { desired.migrations[$0]?.executor } + (service?.databases ?? [])
        for executor in executors {
            if !use.databases.contains(executor) { use.databases.append(executor) }
            if let revision = desired.revision {
                use.databaseRevisions = (use.databaseRevisions ?? [:]).merging([executor: revision.hex]) { $1 }
            }
        }
        let dropped = old.filter { !new.contains($0) }
        use.released.removeAll { new.contains($0) }
        use.abandoned.removeAll { new.contains($0) }
        for name in dropped {
            if rollback {
                if !use.released.contains(name) && !use.abandoned.contains(name) { use.released.append(name) }
            } else if !use.abandoned.contains(name) {
                use.released.removeAll { $0 == name }
                use.abandoned.append(name)
            }
        }
        return use
    }

    /// This install, as migration history records it.
    public func migrationOwner() async throws -> MigrationOwner {
        let branch = try trackedBranch()
        let head = try repository.resolveCommit(branch: branch)
        let root =
            try context.memory.withLock { $0.rootCommits[head] }
            ?? {
                let found = try repository.commits(from: head).last?.id ?? head
                context.memory.withLock { $0.rootCommits[head] = found }
                return found
            }()
        // A shallow clone's history ends at a boundary that moves as it is fetched: its root is not known, so the
        // repository is named by where it is instead.
        let name = repository.isShallow ? "shallow:\(repository.gitDirectory)" : root.hex
        return MigrationOwner(repository: name, branch: branch, path: self.root, state: try await store.installID())
    }

    /// Whether this install may act on a migration: its rows are this install's, or they predate owners and
    /// this install's desired state lists the migration.
    func owns(_ name: String, _ status: MigrationStatus, owner: MigrationOwner, desired: DesiredState) -> Bool {
        guard let recorded = status.owner else {
            return desired.targets.contains { $0.migrations.contains(name) }
        }
        return owner.owns(recorded)
    }

    /// Where each migration stands in `environment`'s databases (every sql executor with one there).
    public func migrationStatuses(
        environment: String, desired: DesiredState
    ) async throws -> [String: MigrationStatus] {
        try await migrationStatuses(environment: environment, executors: desired.executors)
    }

    func migrationStatuses(
        environment: String, executors manifests: [String: ExecutorManifest]
    ) async throws -> [String: MigrationStatus] {
        var result: [String: MigrationStatus] = [:]
        for executor in manifests.values.sorted(by: { $0.name < $1.name })
        where executor.type == .sql && executor.database?.url(for: environment) != nil {
            let database = try await executors.openDatabase(executor, environment: environment)
            let records = try await { () async throws -> [MigrationRecord] in
                defer { Task { await database.close() } }
                return try await database.records()
            }()
            result.merge(MigrationStatus.fold(records)) { $1 }
        }
        return result
    }
}
