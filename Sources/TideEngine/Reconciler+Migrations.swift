import Foundation
public import TideExecutors
import TideGit
public import TideManifest
import TideState

/// Expand-contract migrations, coordinated with the rollouts that need them (DESIGN.md §3): expand (and
/// backfill) before the first rollout of a version that lists the migration; contract once every target of the
/// environment that lists it runs such a version, `after` since; expand's `down` once nothing that needed it
/// runs (or will run) any more; and no way back past a contract.
extension Reconciler {
    /// Expands and backfills, in `target`'s environment, the migrations its version needs; checks that no applied
    /// phase was edited since. Returns why the rollout cannot start, or nil.
    func prepareMigrations(
        for target: DesiredTarget, desired: DesiredState, revision: ObjectID
    ) async throws -> String? {
        guard !target.migrations.isEmpty else { return nil }
        let environment = target.id.environment
        var databases: [String: any MigrationDatabase] = [:]
        defer {
            let open = Array(databases.values)
            Task { for database in open { await database.close() } }
        }
        for name in target.migrations {
            // The builder checked that the migration and its sql executor exist.
            guard let migration = desired.migrations[name], let executor = desired.executors[migration.executor] else {
                return "migration \(name) is not defined"
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
                if let edited = Self.editedPhase(migration, status) { return edited }
                if status.contract != nil { continue }
                for phaseName in [MigrationManifest.PhaseName.expand, .backfill] {
                    guard let phase = migration.phase(phaseName), status.record(phaseName) == nil else { continue }
                    let record = MigrationRecord(
                        name: name, phase: phaseName == .expand ? .expand : .backfill, checksum: phase.checksum,
                        revision: revision.hex, appliedAt: clock.now(), durationMilliseconds: 0,
                        down: phaseName == .expand ? phase.down : [])
                    let ran = try await database.apply(
                        phase.up, record: record, batchSize: phase.batchSize,
                        due: { records in
                            let now = MigrationStatus.fold(records)[name] ?? MigrationStatus()
                            return now.record(phaseName) == nil && now.contract == nil
                        })
                    if ran {
                        try await recordMigration(
                            .migrationApplied, target: target, revision: revision,
                            message: "migration \(name): \(phaseName.rawValue) applied in \(environment)")
                    }
                }
            } catch {
                // failBeforeRollout records it.
                return "migration \(name): \(environment): \(error); the database is as before the phase, and the "
                    + "rollout of \(target.version) did not start"
            }
        }
        return nil
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

    /// An applied phase whose statements the manifest no longer matches.
    static func editedPhase(_ migration: MigrationManifest, _ status: MigrationStatus) -> String? {
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
        try await store.apply(
            StateWrite(
                events: [
                    Event(
                        time: clock.now(), kind: kind, target: target.id, revision: revision, version: target.version,
                        message: message)
                ]))
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
        state.phase = .failed
        state.updatedAt = now
        try await store.apply(
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
            state.waitingOn = ["refused"]
            state.updatedAt = now
            try await store.apply(
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

    /// Per environment, the migrations contracted there that a running version needs and its desired version
    /// does not list: the planner refuses those rollbacks.
    func contractedMigrations(desired: DesiredState, live: [LiveTarget]) async throws -> [String: [String: Date]] {
        var result: [String: [String: Date]] = [:]
        let desiredByID = Dictionary(desired.targets.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let dropping = live.filter { target in
            guard let wanted = desiredByID[target.id] else { return false }
            return target.migrations.contains { !wanted.migrations.contains($0) }
        }
        for environment in Set(dropping.map(\.id.environment)).sorted() {
            let running = Set(dropping.filter { $0.id.environment == environment }.flatMap(\.migrations))
            for (name, status) in try await migrationStatuses(environment: environment, desired: desired)
            where running.contains(name) {
                if let contract = status.contract { result[environment, default: [:]][name] = contract.appliedAt }
            }
        }
        return result
    }

    /// After the pass's rollouts: contracts that are due, and downs for migrations nothing needs any more.
    func settleMigrations(desired: DesiredState, revision: ObjectID) async throws -> [MigrationOutcome] {
        let live = try await store.liveTargets()
        let liveByID = Dictionary(live.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var outcomes: [MigrationOutcome] = []
        let now = clock.now()
        // Per database: environments that share one (an executor's default url) share its schema, so what one
        // of them still needs, none of them undoes. Every database is read: a migration nothing lists any more
        // (a revert removed it, manifest and all) is found in its history, with the down its expand recorded.
        for executor in desired.executors.values.filter({ $0.type == .sql }).sorted(by: { $0.name < $1.name }) {
            guard let spec = executor.database else { continue }
            var groups: [DatabaseURL: [String]] = [:]
            for environment in desired.environments.keys.sorted() {
                if let url = spec.url(for: environment) { groups[url, default: []].append(environment) }
            }
            for environments in groups.values.sorted(by: { $0[0] < $1[0] }) {
                let environment = environments.joined(separator: ",")
                let desiredHere = desired.targets.filter { environments.contains($0.id.environment) }
                let liveHere = live.filter { environments.contains($0.id.environment) }
                let database: any MigrationDatabase
                do {
                    database = try await executors.openDatabase(executor, environment: environments[0])
                } catch {
                    outcomes.append(
                        MigrationOutcome(
                            migration: "*", environment: environment, phase: "-", result: .failed,
                            message: "cannot open executor \(executor.name)'s database: \(error)"))
                    continue
                }
                defer { Task { await database.close() } }
                let statuses: [String: MigrationStatus]
                do {
                    statuses = MigrationStatus.fold(try await database.records())
                } catch {
                    outcomes.append(
                        MigrationOutcome(
                            migration: "*", environment: environment, phase: "-", result: .failed,
                            message: "cannot read executor \(executor.name)'s migration history: \(error)"))
                    continue
                }
                for (name, status) in statuses.sorted(by: { $0.key < $1.key })
                where status.isApplied && status.contract == nil {
                    if let outcome = try await settle(
                        name, status: status, database: database, environment: environment, desired: desired,
                        desiredHere: desiredHere, liveHere: liveHere, liveByID: liveByID, executor: executor.name,
                        revision: revision, now: now)
                    {
                        outcomes.append(outcome)
                    }
                }
            }
        }
        return outcomes
    }

    private func settle(
        _ name: String, status: MigrationStatus, database: any MigrationDatabase, environment: String,
        desired: DesiredState, desiredHere: [DesiredTarget], liveHere: [LiveTarget],
        liveByID: [TargetID: LiveTarget], executor: String, revision: ObjectID, now: Date
    ) async throws -> MigrationOutcome? {
        let inUse = liveHere.contains { $0.migrations.contains(name) || $0.rollout?.migrations.contains(name) == true }
        let wanters = desiredHere.filter { $0.migrations.contains(name) }
        let wanted = wanters.contains { target in
            guard let failed = liveByID[target.id]?.failed else { return true }
            return !(failed.version == target.version && failed.configDigest == target.configDigest)
        }
        func outcome(_ phase: String, _ result: MigrationOutcome.Result, _ message: String, due: Date? = nil)
            -> MigrationOutcome
        {
            MigrationOutcome(
                migration: name, environment: environment, phase: phase, result: result, message: message,
                nextDue: due)
        }
        func event(_ kind: Event.Kind, _ message: String) async throws {
            try await store.apply(
                StateWrite(events: [Event(time: now, kind: kind, revision: revision, message: message)]))
        }
        if !inUse && !wanted {
            // Rolled back before contract: the app went back first (this pass or earlier); now the schema does.
            let record = MigrationRecord(
                name: name, phase: .down, checksum: "-", revision: revision.hex, appliedAt: now,
                durationMilliseconds: 0)
            do {
                let ran = try await database.apply(
                    status.expand?.down ?? [], record: record, batchSize: nil,
                    due: { records in
                        let current = MigrationStatus.fold(records)[name] ?? MigrationStatus()
                        return current.isApplied && current.contract == nil
                    })
                guard ran else { return nil }
                let message =
                    "migration \(name): expand undone in \(environment) (its down ran): nothing that needed it runs "
                    + "any more"
                try await event(.migrationApplied, message)
                return outcome("down", .applied, message)
            } catch {
                let message = "migration \(name): down failed in \(environment): \(error); the database is as before"
                try await event(.migrationFailed, message)
                return outcome("down", .failed, message)
            }
        }
        guard let migration = desired.migrations[name], migration.executor == executor,
            let contract = migration.contract, !wanters.isEmpty
        else { return nil }
        if let edited = Self.editedPhase(migration, status) { return outcome("contract", .failed, edited) }
        let finished = wanters.allSatisfy { target in
            guard let live = liveByID[target.id] else { return false }
            return live.phase == .healthy && live.rollout == nil && live.version == target.version
                && live.configDigest == target.configDigest && live.migrations.contains(name)
        }
        guard finished else { return nil }
        let since = wanters.compactMap { liveByID[$0.id]?.migratedAt }.max() ?? now
        let due = since.addingTimeInterval(contract.after)
        if now < due {
            return outcome(
                "contract", .waiting,
                "migration \(name): contract in \(environment) waits until \(GateEvaluator.format(due)) "
                    + "(after: \(ManifestDuration.format(contract.after)) since the last rollout that needs it)",
                due: due)
        }
        let record = MigrationRecord(
            name: name, phase: .contract, checksum: contract.checksum, revision: revision.hex, appliedAt: now,
            durationMilliseconds: 0)
        do {
            let ran = try await database.apply(
                contract.up, record: record, batchSize: nil,
                due: { records in
                    let current = MigrationStatus.fold(records)[name] ?? MigrationStatus()
                    return current.isApplied && current.contract == nil
                })
            guard ran else { return nil }
            let message =
                "migration \(name): contract applied in \(environment): every service that needs it runs its new "
                + "version; rolling back past it is refused from now on"
            try await event(.migrationApplied, message)
            return outcome("contract", .applied, message)
        } catch {
            let message = "migration \(name): contract failed in \(environment): \(error); the database is as before"
            try await event(.migrationFailed, message)
            return outcome("contract", .failed, message)
        }
    }

    /// Where each migration stands in `environment`'s databases (every sql executor with one there).
    public func migrationStatuses(
        environment: String, desired: DesiredState
    ) async throws -> [String: MigrationStatus] {
        var result: [String: MigrationStatus] = [:]
        for executor in desired.executors.values.sorted(by: { $0.name < $1.name })
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
