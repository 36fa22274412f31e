import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

/// After a pass: which database each migration lives in, who uses it, and what `MigrationDecision` says about
/// each applied migration there — carried out (contract, down) or reported.
extension MigrationCoordinator {
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
        // Every environment something runs in, not only those desired state still has: a live target whose
        // Environment left the repository still reads its database until it is removed.
        let environments = Set(desired.environments.keys).union(live.map(\.id.environment)).sorted()
        let liveExecutors = executorsOfLiveRevisions(live, desired: desired)
        for executor in sqlExecutors(desired, live: live) {
            for environment in environments {
                let url =
                    executor.database?.url(for: environment)
                    ?? liveExecutors[environment]?[executor.name]?.database?.url(for: environment)
                guard let url else { continue }
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

    /// For environments that left desired state: the sql executors as the revisions their live targets run had
    /// them (where their databases were).
    private func executorsOfLiveRevisions(
        _ live: [LiveTarget], desired: DesiredState
    ) -> [String: [String: ExecutorManifest]] {
        var result: [String: [String: ExecutorManifest]] = [:]
        for target in live where desired.environments[target.id.environment] == nil {
            guard let revision = target.revision,
                let then = try? loader.load(from: GitCommitSource(repository: repository, commit: revision, root: root))
            else { continue }
            for (name, executor) in then.executors where executor.type == .sql {
                result[target.id.environment, default: [:]][name] = executor
            }
        }
        return result
    }

    /// Where a database is, whatever it is called: an SQLite file's device and inode (a hard link is the same
    /// file; each name would otherwise get its own write-ahead log, and one name would not see what was written
    /// through the other until a checkpoint), else its standardised path; a PostgreSQL database's host (loopback
    /// names folded), port and name.
    static func place(_ url: DatabaseURL) -> String {
        switch url {
        case .sqlite(let path):
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            let resolved = URL(fileURLWithPath: absolute).standardizedFileURL.resolvingSymlinksInPath().path
            var status = stat()
            if stat(resolved, &status) == 0 { return "sqlite-file:\(status.st_dev):\(status.st_ino)" }
            return "sqlite:" + resolved
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
        // Open and read every database first, all at once: a server that accepts connections and never answers
        // holds the pass for one connect timeout, not one per environment.
        let groups = databaseGroups(desired, live: live)
        let opened: [(entry: GroupDecisions, records: [MigrationRecord])] = try await withThrowingTaskGroup(
            of: (Int, GroupDecisions, [MigrationRecord]).self
        ) { tasks in
            for (index, group) in groups.enumerated() {
                tasks.addTask {
                    var entry = GroupDecisions(group: group)
                    do {
                        let database = try await self.executors.openDatabase(
                            group.executor, environment: group.environments[0])
                        entry.database = database
                        let records = try await database.records()
                        entry.statuses = MigrationStatus.fold(records)
                        return (index, entry, records)
                    } catch {
                        entry.error = "\(error)"
                        entry.transient = (error as? MigrationError)?.isTransient ?? false
                        return (index, entry, [])
                    }
                }
            }
            var results: [(Int, GroupDecisions, [MigrationRecord])] = []
            for try await result in tasks { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map { ($0.1, $0.2) }
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
                context.unsettledUsers = status.unsettledUsers.filter { !owner.owns($0) }
                context.laterApplied = entry.statuses.filter {
                    $0.key != name && $0.value.isApplied && $0.value.sequence > status.sequence
                }.keys.sorted()
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
    /// else that looks abandoned is reported and left alone. What this install says about other installs'
    /// migrations it uses (`ready`, `unused`) is written here too, and a history that went backwards is reported.
    func settleMigrations(desired: DesiredState, revision: ObjectID) async throws -> [MigrationOutcome] {
        let now = clock.now()
        let owner = try await migrationOwner()
        var outcomes: [MigrationOutcome] = []
        let live = try await store.liveTargets()
        for entry in try await decideMigrations(desired: desired, live: live, now: now) {
            defer { if let database = entry.database { Task { await database.close() } } }
            let label = entry.group.label
            guard let database = entry.database, entry.error == nil else {
                outcomes.append(
                    MigrationOutcome(
                        migration: "*", environment: label, phase: .whole, result: entry.transient ? .waiting : .failed,
                        message: "cannot read executor \(entry.group.executor.name)'s migration history: "
                            + (entry.error ?? "") + (entry.transient ? "; contracts and downs wait for it" : "")))
                continue
            }
            outcomes += try await reportUse(
                entry, database: database, desired: desired, live: live, owner: owner, revision: revision)
            outcomes += lostHistories(entry, live: live)
            for (name, decision) in entry.decisions {
                // Nothing irreversible on a head that moved since the pass read it (a revert pushed meanwhile):
                // decided again at the next pass, from the new head.
                if [.contract, .down].contains(decision.kind), let moved = try await headMoved(from: revision) {
                    outcomes.append(
                        MigrationOutcome(
                            migration: name, environment: label,
                            phase: .of(decision.kind == .contract ? .contract : .down),
                            result: .waiting,
                            message: "migration \(name): \(decision.kind == .contract ? "contract" : "down") in "
                                + "\(label) waits: the branch moved to \(moved.short) during the pass; decided again "
                                + "from it", nextDue: now))
                    continue
                }
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

    /// The branch head, when it is no longer `revision` (after fetching, under `tide run`, when a push was
    /// announced): nil when it is still the one the pass planned from.
    func headMoved(from revision: ObjectID) async throws -> ObjectID? {
        if let refresh = beforeIrreversible { await refresh() }
        let head = try repository.resolveCommit(branch: trackedBranch())
        return head == revision ? nil : head
    }

    /// Other installs' migrations this install uses: `ready` once every target of this install that lists it runs
    /// healthy a version that does (the owner may contract), `use` again when one is to run a version without it,
    /// `unused` once none lists it any more (the owner may undo it).
    private func reportUse(
        _ entry: GroupDecisions, database: any MigrationDatabase, desired: DesiredState, live: [LiveTarget],
        owner: MigrationOwner, revision: ObjectID
    ) async throws -> [MigrationOutcome] {
        let group = entry.group
        let here = { (id: TargetID) in group.environments.contains(id.environment) }
        var outcomes: [MigrationOutcome] = []
        for (name, status) in entry.statuses.sorted(by: { $0.key < $1.key }) where status.isApplied {
            guard let using = status.users[owner.id], !owns(name, status, owner: owner, desired: desired) else {
                continue
            }
            let wanting = desired.targets.filter { here($0.id) && $0.migrations.contains(name) }
            let running = live.filter {
                here($0.id) && ($0.migrations.contains(name) || $0.rollout?.migrations.contains(name) == true)
            }
            let users = users(of: group, desired: desired, live: live)
            let state: MigrationRecord.Phase
            if wanting.isEmpty && running.isEmpty {
                state = .unused
            } else {
                let settled = users.allSatisfy { id in
                    let wanted = desired.target(id)
                    let now = live.first { $0.id == id }
                    return (wanted == nil || wanted?.migrations.contains(name) == true)
                        && (now == nil
                            || (now?.phase == .healthy && now?.rollout == nil && now?.migrations.contains(name) == true))
                }
                state = settled ? .ready : .use
            }
            if state == .use && using == false { continue }
            if state == .ready && using == true { continue }
            let row = MigrationRecord(
                name: name, phase: state, checksum: "-", revision: revision.hex, appliedAt: clock.now(),
                durationMilliseconds: 0, owner: owner.record(environment: group.label))
            do {
                _ = try await database.apply(MigrationRun([]), record: row, due: { _ in true })
                let words =
                    switch state {
                    case .ready: "this install's targets run healthy versions that list it: its owner may contract it"
                    case .unused: "this install needs it no more: its owner may undo it"
                    default: "this install is to run a version without it again: its owner's contract waits"
                    }
                outcomes.append(
                    MigrationOutcome(
                        migration: name, environment: group.label, phase: .of(state), result: .applied,
                        message: "migration \(name) (another install's) in \(group.label): \(words)"))
            } catch {
                outcomes.append(
                    MigrationOutcome(
                        migration: name, environment: group.label, phase: .of(state), result: .waiting,
                        message: "migration \(name) in \(group.label): cannot record this install's use: \(error)"))
            }
        }
        return outcomes
    }

    /// Live targets that run versions needing a migration the database has no history of: said loudly, each pass,
    /// until a person decides (the database was replaced or restored).
    private func lostHistories(_ entry: GroupDecisions, live: [LiveTarget]) -> [MigrationOutcome] {
        var names: Set<String> = []
        for target in live where entry.group.environments.contains(target.id.environment) {
            for name in target.migrations where entry.statuses[name]?.isApplied != true { names.insert(name) }
        }
        return names.sorted().compactMap { name in
            let why = entry.group.environments.lazy.compactMap {
                Self.lostHistory(name, entry.statuses[name] ?? MigrationStatus(), environment: $0, live: live)
            }.first
            return why.map {
                MigrationOutcome(
                    migration: name, environment: entry.group.label, phase: .whole, result: .failed, message: $0)
            }
        }
    }

    func carryOut(
        _ decision: MigrationDecision, name: String, status: MigrationStatus, database: any MigrationDatabase,
        group: DatabaseGroup, desired: DesiredState, owner: MigrationOwner, revision: ObjectID, now: Date
    ) async throws -> MigrationOutcome? {
        let label = group.label
        func event(_ kind: Event.Kind, _ message: String) async throws {
            try await journal.commit(
                StateWrite(events: [Event(time: now, kind: kind, revision: revision, message: message)]))
        }
        switch decision {
        case .inUse:
            return nil
        case .leftAlone(let why):
            return MigrationOutcome(
                migration: name, environment: label, phase: .whole, result: .leftAlone, message: why)
        case .contractBlocked(let why):
            return MigrationOutcome(
                migration: name, environment: label, phase: .of(.contract), result: .waiting,
                message: "migration \(name): contract in \(label) waits: \(why)")
        case .contractWaits(let due):
            let after = desired.migrations[name]?.contract?.after ?? 0
            return MigrationOutcome(
                migration: name, environment: label, phase: .of(.contract), result: .waiting,
                message: "migration \(name): contract in \(label) at \(GateEvaluator.format(due)) "
                    + "(after: \(ManifestDuration.format(after)) since the last rollout that needs it)",
                nextDue: due)
        case .contract:
            guard let contract = desired.migrations[name]?.contract else { return nil }
            if let migration = desired.migrations[name], let edited = Self.editedPhase(migration, status) {
                return MigrationOutcome(
                    migration: name, environment: label, phase: .of(.contract), result: .failed, message: edited)
            }
            let record = MigrationRecord(
                name: name, phase: .contract, checksum: contract.checksum, revision: revision.hex, appliedAt: now,
                durationMilliseconds: 0, owner: owner.record(environment: label))
            var run = MigrationRun(contract)
            let resume = status.partial(.contract)?.done ?? 0
            run.resumeFrom = resume
            do {
                let ran = try await database.apply(
                    contract, run: run, record: record,
                    due: { records in
                        let current = MigrationStatus.fold(records)[name] ?? MigrationStatus()
                        return current.isApplied && current.contract == nil
                            && (current.partial(.contract)?.done ?? 0) == resume
                    })
                guard ran else { return nil }
                let message =
                    "migration \(name): contract applied in \(label)"
                    + (resume > 0 ? " (went on from statement \(resume + 1))" : "")
                    + ": every target that uses the database runs a version that needs it; rolling back past it is "
                    + "refused from now on"
                try await event(.migrationApplied, message)
                return MigrationOutcome(
                    migration: name, environment: label, phase: .of(.contract), result: .applied, message: message)
            } catch {
                let message =
                    "migration \(name): contract failed in \(label): \(error)"
                    + Self.leftBehind(error, phase: "contract")
                try await event(.migrationFailed, message)
                return MigrationOutcome(
                    migration: name, environment: label, phase: .of(.contract),
                    result: (error as? MigrationError)?.isTransient == true ? .waiting : .failed, message: message)
            }
        case .down(_, let reason):
            return try await runDown(
                name, run: Self.downRun(status, current: desired.migrations[name], executors: group.names),
                reason: reason, database: database, group: group, owner: owner, revision: revision, now: now)
        }
    }

    /// The down that runs: the one expand recorded when it was applied — an edit of `expand.down` afterwards does
    /// not change what an automatic down does — unless that down failed (or stopped half way): then the current
    /// manifest's, so a failing down is fixed in git. A migration whose expand recorded no down (older rows) uses
    /// the manifest's.
    static func downRun(_ status: MigrationStatus, current: MigrationManifest?, executors: Set<String>) -> MigrationRun
    {
        let recorded = status.expand.map { MigrationRun(down: $0) }
        let fixable = status.partial?.phase == .down || recorded?.statements.isEmpty != false
        var run = recorded ?? MigrationRun([])
        if fixable, let manifest = current, executors.contains(manifest.executor), let expand = manifest.expand,
            !expand.down.isEmpty
        {
            run = MigrationRun(expand.down, transaction: expand.transaction)
        }
        if let partial = status.partial, partial.phase == .down {
            run.resumeFrom = min(partial.done, run.statements.count)
        }
        return run
    }

    /// What a failed phase left in the database, in words: nothing, committed rounds, or a half-done phase.
    static func leftBehind(_ error: any Error, phase: String) -> String {
        guard let error = error as? MigrationError else { return "; the database is as before" }
        if error.done != nil { return "" }  // the error says how far it got, and that it is recorded half done
        if error.partial { return "" }  // committed rounds, said in the error
        return error.isTransient
            ? "; the database is as before, and it is tried again later" : "; the database is as before"
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
            let resume = run.resumeFrom
            let ran = try await database.apply(
                run, record: record,
                due: { records in
                    let current = MigrationStatus.fold(records)[name] ?? MigrationStatus()
                    return current.isApplied && current.contractStarted == nil
                        && (current.partial.map { $0.phase == .down ? $0.done : 0 } ?? 0) == resume
                })
            guard ran else { return nil }
            let message = "migration \(name): expand undone in \(label) (its down ran): \(reason)"
            let affected = try await store.liveTargets().filter { group.environments.contains($0.id.environment) }
            // Read and written under the targets' turns (an operator's control may be writing one meanwhile).
            try await targetLocks.with(all: affected.map(\.id)) {
                var cleared: [LiveTarget] = []
                for id in affected.map(\.id) {
                    guard var target = try await store.liveTarget(id) else { continue }
                    let before = target.migrationUse
                    target.migrationUse.released.removeAll { $0 == name }
                    target.migrationUse.abandoned.removeAll { $0 == name }
                    if target.migrationUse != before { cleared.append(target) }
                }
                try await journal.commit(
                    StateWrite(
                        targets: cleared,
                        events: [Event(time: now, kind: .migrationApplied, revision: revision, message: message)]))
            }
            return MigrationOutcome(
                migration: name, environment: label, phase: .of(.down), result: .applied, message: message)
        } catch {
            let transient = (error as? MigrationError)?.isTransient == true
            if run.transaction, !transient {
                // Remember that this down failed, so the fix committed to expand.down is the one that runs next.
                var failed = run.progress(record, done: 0, failure: error as? MigrationError)
                failed.appliedAt = now
                _ = try? await database.apply(MigrationRun([]), record: failed, due: { _ in true })
            }
            let message =
                "migration \(name): down failed in \(label): \(error)" + Self.leftBehind(error, phase: "down")
                + (transient
                    ? ""
                    : ". Fix expand.down in the Migration manifest (after a failed down, the manifest's down is the "
                        + "one that runs) and commit")
            try await journal.commit(
                StateWrite(events: [Event(time: now, kind: .migrationFailed, revision: revision, message: message)]))
            return MigrationOutcome(
                migration: name, environment: label, phase: .of(.down), result: transient ? .waiting : .failed,
                message: message)
        }
    }
}
