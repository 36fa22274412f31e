import Foundation
public import TideExecutors
import TideGit
public import TideManifest
import TideState

/// Expand-contract migrations, coordinated with the rollouts that need them (DESIGN.md §3): expand (and
/// backfill) before the first rollout of a version that lists the migration; contract once every target of the
/// environment that lists it runs such a version, `after` since; expand's `down` once nothing that needed it
/// runs (or will run) any more; and no way back past a contract.
/// Whether a rollout's migrations are ready.
enum MigrationPreparation {
    case ready
    /// A permanent failure: the rollout does not start and the version is held.
    case failed(String)
    /// A transient database error: the rollout waits and the phase is retried.
    case retry(String)
}

extension Reconciler {
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
                if status.contract != nil { continue }
                // Another install's migration: its phases are its owner's to run; what is applied serves here too,
                // and the owner is told (a `use` row) so it never undoes it by itself while this install needs it.
                let owner = try await migrationOwner()
                if status.isApplied, !owns(name, status, owner: owner, desired: desired) {
                    if !status.usedBy.contains(owner.id) {
                        let use = MigrationRecord(
                            name: name, phase: .use, checksum: "-", revision: revision.hex, appliedAt: clock.now(),
                            durationMilliseconds: 0, owner: owner.record(environment: environment))
                        _ = try await database.apply(
                            MigrationRun([]), record: use,
                            due: { [owner] records in
                                !(MigrationStatus.fold(records)[name]?.usedBy.contains(owner.id) ?? true)
                            })
                    }
                    continue
                }
                for phaseName in [MigrationManifest.PhaseName.expand, .backfill] {
                    guard let phase = migration.phase(phaseName), status.record(phaseName) == nil else { continue }
                    let record = MigrationRecord(
                        name: name, phase: phaseName == .expand ? .expand : .backfill, checksum: phase.checksum,
                        revision: revision.hex, appliedAt: clock.now(), durationMilliseconds: 0,
                        down: phaseName == .expand ? phase.down : [], owner: owner.record(environment: environment))
                    let ran = try await database.apply(
                        phase, record: record,
                        due: { [owner] records in
                            // Still due once the lock is held, and still this install's to run: another install
                            // may have expanded it meanwhile.
                            let now = MigrationStatus.fold(records)[name] ?? MigrationStatus()
                            return now.record(phaseName) == nil && now.contract == nil
                                && (now.owner.map(owner.owns) ?? true)
                        })
                    if ran {
                        try await recordMigration(
                            .migrationApplied, target: target, revision: revision,
                            message: "migration \(name): \(phaseName.rawValue) applied in \(environment)")
                    }
                }
            } catch let error as MigrationError where error.isTransient {
                // Out of reach, busy, or out of time: the database is as before the phase (a batched backfill
                // keeps its committed rounds), nothing is undone, and the phase is tried again later.
                return .retry(
                    "migration \(name): \(environment): \(error)"
                        + (error.partial ? " (the work committed so far is kept)" : ""))
            } catch {
                // failBeforeRollout records it.
                return .failed(
                    "migration \(name): \(environment): \(error); the database is as before the phase, and the "
                        + "rollout of \(target.version) did not start")
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
        let firstTime = state.waitingOn != ["database"]
        state.waiting = reason
        state.waitingOn = ["database"]
        state.updatedAt = now
        try await store.apply(
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
    /// An environment whose databases cannot be read now is in `unreadable`, with why: the planner refuses the
    /// rollbacks there that would drop a migration (it cannot tell whether a contract ran), and the pass goes on.
    func contractedMigrations(
        desired: DesiredState, live: [LiveTarget]
    ) async -> (contracted: [String: [String: Date]], unreadable: [String: String]) {
        var result: [String: [String: Date]] = [:]
        var unreadable: [String: String] = [:]
        let desiredByID = Dictionary(desired.targets.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let dropping = live.filter { target in
            guard let wanted = desiredByID[target.id] else { return false }
            return target.migrations.contains { !wanted.migrations.contains($0) }
        }
        for environment in Set(dropping.map(\.id.environment)).sorted() {
            let here = dropping.filter { $0.id.environment == environment }
            let running = Set(here.flatMap(\.migrations))
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
            let statuses: [String: MigrationStatus]
            do {
                statuses = try await migrationStatuses(environment: environment, executors: executors)
            } catch {
                unreadable[environment] = "\(error)"
                continue
            }
            for (name, status) in statuses where running.contains(name) {
                if let contract = status.contract { result[environment, default: [:]][name] = contract.appliedAt }
            }
        }
        return (result, unreadable)
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
            try rootCommits.withLock { $0[head] }
            ?? {
                let found = try repository.commits(from: head).last?.id ?? head
                rootCommits.withLock { $0[head] = found }
                return found
            }()
        return MigrationOwner(
            repository: root.hex, branch: branch, path: self.root, state: try await store.installID())
    }

    /// Whether this install may act on a migration: its rows are this install's, or they predate owners and
    /// this install's desired state lists the migration.
    func owns(_ name: String, _ status: MigrationStatus, owner: MigrationOwner, desired: DesiredState) -> Bool {
        guard let recorded = status.owner else {
            return desired.targets.contains { $0.migrations.contains(name) }
        }
        return owner.owns(recorded)
    }

    /// One database and the environments that share it — under every executor name that reaches it (two
    /// executors with the same URL, or two spellings of one: `localhost`/`127.0.0.1`, `./` in a path, are one
    /// database, and what one of its users still needs, none of them undoes).
    struct DatabaseGroup {
        var executors: [ExecutorManifest]
        var environments: [String]
        /// The executor the database is opened through.
        var executor: ExecutorManifest { executors[0] }
        var names: Set<String> { Set(executors.map(\.name)) }
        var label: String { environments.joined(separator: ",") }
    }

    /// The sql executors to look at: desired state's, and those the running versions' revisions had — a revert
    /// that took a version back usually removed the Migration and its executor too, and what they applied must
    /// stay visible (and be undone only by the rules).
    func sqlExecutors(_ desired: DesiredState, live: [LiveTarget]) -> [ExecutorManifest] {
        var executors = desired.executors.filter { $0.value.type == .sql }
        let remembered = live.flatMap { ($0.migrationUse.databaseRevisions ?? [:]).values }.compactMap(
            ObjectID.init(hex:))
        for revision in Set(live.compactMap(\.revision) + remembered) where revision != desired.revision {
            guard
                let then = try? loader.load(from: GitCommitSource(repository: repository, commit: revision, root: root))
            else { continue }
            for (name, executor) in then.executors where executor.type == .sql && executors[name] == nil {
                executors[name] = executor
            }
        }
        return executors.values.sorted { $0.name < $1.name }
    }

    func databaseGroups(_ desired: DesiredState, live: [LiveTarget] = []) -> [DatabaseGroup] {
        var groups: [String: DatabaseGroup] = [:]
        var order: [String] = []
        for executor in sqlExecutors(desired, live: live) {
            guard let spec = executor.database else { continue }
            for environment in desired.environments.keys.sorted() {
                guard let url = spec.url(for: environment) else { continue }
                let place = Self.place(url)
                if groups[place] == nil {
                    groups[place] = DatabaseGroup(executors: [], environments: [])
                    order.append(place)
                }
                if !groups[place]!.executors.contains(where: { $0.name == executor.name }) {
                    groups[place]!.executors.append(executor)
                }
                if !groups[place]!.environments.contains(environment) {
                    groups[place]!.environments.append(environment)
                }
            }
        }
        return order.compactMap { groups[$0] }.map { group in
            var group = group
            group.environments.sort()
            return group
        }
    }

    /// Where a database is, whatever it is called: an SQLite file's standardised path, a PostgreSQL database's
    /// host (loopback names folded), port and name.
    static func place(_ url: DatabaseURL) -> String {
        switch url {
        case .sqlite(let path):
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            return "sqlite:" + (URL(fileURLWithPath: absolute).standardizedFileURL.resolvingSymlinksInPath().path)
        case .postgres(_, let host, let port, let database, _):
            let loopback = ["localhost", "127.0.0.1", "::1", "[::1]"]
            return
                "postgres:\(loopback.contains(host.lowercased()) ? "loopback" : host.lowercased()):\(port)/\(database)"
        }
    }

    /// The targets of `group` whose service uses its database: a migration (in any environment) or
    /// `spec.databases` names one of its executors, or one of its live targets' versions ever used one.
    func users(of group: DatabaseGroup, desired: DesiredState, live: [LiveTarget]) -> Set<TargetID> {
        let names = group.names
        var services = Set(live.filter { !names.isDisjoint(with: $0.migrationUse.databases) }.map(\.id.service))
        for service in desired.services.values {
            let lists = [service.migrations] + service.environments.values.compactMap(\.migrations)
            if !names.isDisjoint(with: service.databases)
                || lists.joined().contains(where: { desired.migrations[$0].map { names.contains($0.executor) } == true }
                )
            {
                services.insert(service.name)
            }
        }
        let ids =
            desired.targets.map(\.id).filter { group.environments.contains($0.environment) }
            + live.map(\.id).filter { group.environments.contains($0.environment) }
        return Set(ids.filter { services.contains($0.service) })
    }

    /// Every owned, applied, uncontracted migration's decision in each database, with the open database (the
    /// caller closes it). `statuses` may be read but not decided (a database that cannot be read is reported).
    struct GroupDecisions {
        var group: DatabaseGroup
        var database: (any MigrationDatabase)?
        var statuses: [String: MigrationStatus] = [:]
        var decisions: [(name: String, decision: MigrationDecision)] = []
        var error: String?
        /// The error is transient (the database is out of reach or busy): contracts and downs just wait.
        var transient = false
    }

    func decideMigrations(desired: DesiredState, live: [LiveTarget], now: Date) async throws -> [GroupDecisions] {
        let owner = try await migrationOwner()
        // Open and read every database first.
        var opened: [(entry: GroupDecisions, records: [MigrationRecord])] = []
        for group in databaseGroups(desired, live: live) {
            var entry = GroupDecisions(group: group)
            do {
                let database = try await executors.openDatabase(group.executor, environment: group.environments[0])
                entry.database = database
                let records = try await database.records()
                entry.statuses = MigrationStatus.fold(records)
                opened.append((entry, records))
            } catch {
                entry.error = "\(error)"
                entry.transient = (error as? MigrationError)?.isTransient ?? false
                opened.append((entry, []))
            }
        }
        // One database reached under names that do not look alike (a DNS name and an address, a hard link) shows
        // the same history through each: those are one database, and one decision covers every environment that
        // reaches it — or a contract made for one environment would drop what another's version still reads.
        var merged: [(entry: GroupDecisions, records: [MigrationRecord])] = []
        for item in opened {
            let fingerprint = Self.fingerprint(item.records)
            if !item.records.isEmpty, item.entry.error == nil,
                let index = merged.firstIndex(where: {
                    $0.entry.error == nil && Self.fingerprint($0.records) == fingerprint
                })
            {
                for environment in item.entry.group.environments
                where !merged[index].entry.group.environments.contains(environment) {
                    merged[index].entry.group.environments.append(environment)
                }
                for executor in item.entry.group.executors
                where !merged[index].entry.group.names.contains(executor.name) {
                    merged[index].entry.group.executors.append(executor)
                }
                if let database = item.entry.database { Task { await database.close() } }
                continue
            }
            merged.append(item)
        }
        var result: [GroupDecisions] = []
        for (var entry, _) in merged {
            guard entry.error == nil else {
                result.append(entry)
                continue
            }
            let group = entry.group
            let desiredHere = desired.targets.filter { group.environments.contains($0.id.environment) }
            let liveHere = live.filter { group.environments.contains($0.id.environment) }
            let users = users(of: group, desired: desired, live: live)
            for (name, status) in entry.statuses.sorted(by: { $0.key < $1.key }) where status.isApplied {
                let manifest = desired.migrations[name].flatMap { group.names.contains($0.executor) ? $0 : nil }
                var context = MigrationDecision.Context(
                    name: name, status: status, owned: owns(name, status, owner: owner, desired: desired),
                    manifest: manifest, desired: desiredHere, live: liveHere, users: users, now: now,
                    environment: group.environments[0])
                context.otherUsers = status.usedBy.filter { !owner.owns($0) }.sorted()
                entry.decisions.append((name, MigrationDecision.decide(context)))
            }
            result.append(entry)
        }
        return result
    }

    /// What a history says, row by row: two reads of one database's history are equal; two databases' are not
    /// (rows carry their times to the millisecond and who wrote them).
    static func fingerprint(_ records: [MigrationRecord]) -> [String] {
        records.map {
            "\($0.name)|\($0.phase.rawValue)|\($0.checksum)|\($0.revision)|"
                + "\(Int($0.appliedAt.timeIntervalSince1970 * 1000))|\($0.owner ?? "")"
        }
    }

    /// After the pass's rollouts: contracts that are due, downs that explicit rollbacks made due; everything
    /// else that looks abandoned is reported and left alone.
    func settleMigrations(desired: DesiredState, revision: ObjectID) async throws -> [MigrationOutcome] {
        let now = clock.now()
        let owner = try await migrationOwner()
        var outcomes: [MigrationOutcome] = []
        for entry in try await decideMigrations(desired: desired, live: try await store.liveTargets(), now: now) {
            defer { if let database = entry.database { Task { await database.close() } } }
            let label = entry.group.label
            guard let database = entry.database, entry.error == nil else {
                outcomes.append(
                    MigrationOutcome(
                        migration: "*", environment: label, phase: "-", result: entry.transient ? .waiting : .failed,
                        message: "cannot read executor \(entry.group.executor.name)'s migration history: "
                            + (entry.error ?? "") + (entry.transient ? "; contracts and downs wait for it" : "")))
                continue
            }
            for (name, decision) in entry.decisions {
                if let outcome = try await carryOut(
                    decision, name: name, status: entry.statuses[name] ?? MigrationStatus(), database: database,
                    group: entry.group, desired: desired, owner: owner, revision: revision, now: now)
                {
                    outcomes.append(outcome)
                }
            }
        }
        return outcomes
    }

    private func carryOut(
        _ decision: MigrationDecision, name: String, status: MigrationStatus, database: any MigrationDatabase,
        group: DatabaseGroup, desired: DesiredState, owner: MigrationOwner, revision: ObjectID, now: Date
    ) async throws -> MigrationOutcome? {
        let label = group.label
        func event(_ kind: Event.Kind, _ message: String) async throws {
            try await store.apply(
                StateWrite(events: [Event(time: now, kind: kind, revision: revision, message: message)]))
        }
        switch decision {
        case .inUse:
            return nil
        case .leftAlone(let why):
            return MigrationOutcome(
                migration: name, environment: label, phase: "-", result: .leftAlone, message: why)
        case .contractBlocked(let why):
            return MigrationOutcome(
                migration: name, environment: label, phase: "contract", result: .waiting,
                message: "migration \(name): contract in \(label) waits: \(why)")
        case .contractWaits(let due):
            let after = desired.migrations[name]?.contract?.after ?? 0
            return MigrationOutcome(
                migration: name, environment: label, phase: "contract", result: .waiting,
                message: "migration \(name): contract in \(label) at \(GateEvaluator.format(due)) "
                    + "(after: \(ManifestDuration.format(after)) since the last rollout that needs it)",
                nextDue: due)
        case .contract:
            guard let contract = desired.migrations[name]?.contract else { return nil }
            if let migration = desired.migrations[name], let edited = Self.editedPhase(migration, status) {
                return MigrationOutcome(
                    migration: name, environment: label, phase: "contract", result: .failed, message: edited)
            }
            let record = MigrationRecord(
                name: name, phase: .contract, checksum: contract.checksum, revision: revision.hex, appliedAt: now,
                durationMilliseconds: 0, owner: owner.record(environment: label))
            do {
                let ran = try await database.apply(
                    contract, record: record,
                    due: { records in
                        let current = MigrationStatus.fold(records)[name] ?? MigrationStatus()
                        return current.isApplied && current.contract == nil
                    })
                guard ran else { return nil }
                let message =
                    "migration \(name): contract applied in \(label): every target that uses the database runs a "
                    + "version that needs it; rolling back past it is refused from now on"
                try await event(.migrationApplied, message)
                return MigrationOutcome(
                    migration: name, environment: label, phase: "contract", result: .applied, message: message)
            } catch {
                let message = "migration \(name): contract failed in \(label): \(error); the database is as before"
                try await event(.migrationFailed, message)
                return MigrationOutcome(
                    migration: name, environment: label, phase: "contract", result: .failed, message: message)
            }
        case .down(_, let reason):
            return try await runDown(
                name, run: Self.downRun(status, current: desired.migrations[name], executors: group.names),
                reason: reason, database: database, group: group, owner: owner, revision: revision, now: now)
        }
    }

    /// The down that runs: the current manifest's (with its expand's `transaction`) when it still has the
    /// migration on this executor and a down — so a failing down is fixed in git — else the one expand recorded.
    static func downRun(_ status: MigrationStatus, current: MigrationManifest?, executors: Set<String>) -> MigrationRun
    {
        if let manifest = current, executors.contains(manifest.executor), let expand = manifest.expand,
            !expand.down.isEmpty
        {
            return MigrationRun(expand.down, transaction: expand.transaction)
        }
        guard let recorded = status.expand else { return MigrationRun([]) }
        return MigrationRun(down: recorded)
    }

    /// Runs expand's down under the database's lock (unless another process did it meanwhile), records it, and
    /// clears the migration from every target's released and abandoned lists in the group.
    func runDown(
        _ name: String, run: MigrationRun, reason: String, database: any MigrationDatabase, group: DatabaseGroup,
        owner: MigrationOwner, revision: ObjectID, now: Date
    ) async throws -> MigrationOutcome? {
        let label = group.label
        let record = MigrationRecord(
            name: name, phase: .down, checksum: "-", revision: revision.hex, appliedAt: now, durationMilliseconds: 0,
            owner: owner.record(environment: label))
        do {
            let ran = try await database.apply(
                run, record: record,
                due: { records in
                    let current = MigrationStatus.fold(records)[name] ?? MigrationStatus()
                    return current.isApplied && current.contract == nil
                })
            guard ran else { return nil }
            let message = "migration \(name): expand undone in \(label) (its down ran): \(reason)"
            var cleared: [LiveTarget] = []
            for var target in try await store.liveTargets() where group.environments.contains(target.id.environment) {
                let before = target.migrationUse
                target.migrationUse.released.removeAll { $0 == name }
                target.migrationUse.abandoned.removeAll { $0 == name }
                if target.migrationUse != before { cleared.append(target) }
            }
            try await store.apply(
                StateWrite(
                    targets: cleared,
                    events: [Event(time: now, kind: .migrationApplied, revision: revision, message: message)]))
            return MigrationOutcome(
                migration: name, environment: label, phase: "down", result: .applied, message: message)
        } catch {
            let message =
                "migration \(name): down failed in \(label): \(error); the database is as before. Fix expand.down in "
                + "the Migration manifest (the current manifest's down is the one that runs) and commit"
            try await store.apply(
                StateWrite(events: [Event(time: now, kind: .migrationFailed, revision: revision, message: message)]))
            return MigrationOutcome(
                migration: name, environment: label, phase: "down", result: .failed, message: message)
        }
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
