import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

/// After a pass: which database each migration lives in, who uses it, and what `MigrationDecision` says about
/// each applied migration there — carried out (contract, down) or reported.
extension Reconciler {
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

    func carryOut(
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
}
