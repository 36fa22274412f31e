public import Foundation
public import TideExecutors
public import TideManifest
public import TideState

/// What Tide does, by itself, about one applied migration in one database: the rules for `down` and `contract`.
///
/// What must never happen (each is a test on SQLite and PostgreSQL, MigrationSafetyTests and
/// MigrationFaultTests):
/// - a `down` as the side effect of a failed forward rollout, a transient error, a missing document, a rename, or
///   another install: a down runs only after an explicit rollback (a ROLLBACK deployment that finished healthy)
///   took every target that needed the migration back to a version without it;
/// - a `contract` while any target that uses the database (its service's migrations or `databases` name it, or
///   one of its versions ever did) runs, rolls out, or wants a version that does not list the migration —
///   including live targets whose environment left the repository;
/// - a `contract` while another install recorded that it uses the migration and has not said its targets run
///   healthy versions that list it (`use` without `ready`), unless a person released that use;
/// - a `down` under a later migration on the same database that is still applied (it may be built on this one);
/// - a `down` while another install uses it, or a contract or down decided on a head that moved (re-read first);
/// - a phase half done (`transaction: false`, a failure or a crash between statements) reported as undone: it is
///   recorded statement by statement, a contract that started counts as contracted for every refusal, and it goes
///   on from where it stopped — by itself after a crash or a transient failure, after a fix otherwise;
/// - any action on a migration another install applied (its history rows carry that install as owner);
/// - any wait without a bound (`MigrationLimits`: connect, lock, phase; a phase out of its time fails).
///
/// Pure: the inputs are read by the caller, the result is carried out (or shown) by the caller.
public enum MigrationDecision: Sendable, Hashable {
    /// In use, nothing to do.
    case inUse
    /// Run the contract now.
    case contract
    /// The contract waits for its `after` to pass since the last rollout that needs the migration.
    case contractWaits(until: Date)
    /// The contract cannot run: these targets would run without what it keeps.
    case contractBlocked(String)
    /// Run expand's down now (`statements`: the current manifest's when it still has the migration, else what
    /// expand recorded).
    case down(statements: [String], reason: String)
    /// Left in place, and why (another install's, abandoned, a down that waits): reported, never acted on.
    case leftAlone(String)

    /// What carrying it out does: runs a contract, runs a down, or nothing to the database.
    public enum Kind: Sendable, Hashable {
        case contract, down, none
    }

    public var kind: Kind {
        switch self {
        case .contract: .contract
        case .down: .down
        default: .none
        }
    }

    /// The facts about one migration in one database (the environments sharing it), as the caller read them.
    public struct Context: Sendable {
        public var name: String
        public var status: MigrationStatus
        /// Whether this install may act on it (it wrote the history rows, or they predate owners and this
        /// install's desired state lists the migration).
        public var owned: Bool
        /// The migration in desired state, when it is there and runs on this database's executor.
        public var manifest: MigrationManifest?
        /// Desired and live targets of the environments sharing the database.
        public var desired: [DesiredTarget]
        public var live: [LiveTarget]
        /// The targets (of these environments) whose service uses the database.
        public var users: Set<TargetID>
        public var now: Date
        /// An environment of the database, for the commands the reasons name.
        public var environment: String
        /// Other installs that recorded they run a version needing it (their owner ids).
        public var otherUsers: [String] = []
        /// Those of them whose targets have not settled on versions that list it: they hold the contract.
        public var unsettledUsers: [String] = []
        /// Migrations applied after this one on the same database and still applied (a down waits for them).
        public var laterApplied: [String] = []

        public init(
            name: String, status: MigrationStatus, owned: Bool, manifest: MigrationManifest?,
            desired: [DesiredTarget], live: [LiveTarget], users: Set<TargetID>, now: Date, environment: String
        ) {
            self.environment = environment
            self.name = name
            self.status = status
            self.owned = owned
            self.manifest = manifest
            self.desired = desired
            self.live = live
            self.users = users
            self.now = now
        }
    }

    public static func decide(_ c: Context) -> MigrationDecision {
        guard c.status.isApplied, c.status.contract == nil else { return .inUse }
        guard c.owned else {
            return .leftAlone(
                "applied by another install (\(c.status.owner ?? "unknown")); Tide never undoes or contracts a "
                    + "migration it does not own")
        }
        if let partial = c.status.partial, let decision = halfDone(partial, c) { return decision }
        let wanters = c.desired.filter { $0.migrations.contains(c.name) }
        let running = c.live.filter {
            $0.migrations.contains(c.name) || $0.rollout?.migrations.contains(c.name) == true
        }
        if wanters.isEmpty && running.isEmpty {
            return unneeded(c)
        }
        guard !wanters.isEmpty, let contract = c.manifest?.contract else { return .inUse }
        if let blockers = contractBlockers(c) { return .contractBlocked(blockers) }
        if !c.unsettledUsers.isEmpty {
            return .contractBlocked(
                "another install recorded that it runs or rolls out a version that needs the old schema too ("
                    + c.unsettledUsers.joined(separator: "; ") + "); its use holds the contract until it reports its "
                    + "targets run healthy versions that list \(c.name), or a person releases it (tide migrations "
                    + "release \(c.name) --env \(c.environment) --install ID)")
        }
        let since = c.live.filter { $0.migrations.contains(c.name) }.compactMap(\.migratedAt).max() ?? c.now
        let due = since.addingTimeInterval(contract.after)
        return c.now < due ? .contractWaits(until: due) : .contract
    }

    /// Nothing desired or live needs it: a down only after explicit rollbacks, everything else is left alone.
    private static func unneeded(_ c: Context) -> MigrationDecision {
        let released = c.live.filter { $0.migrationUse.released.contains(c.name) }
        let abandoned = c.live.filter { $0.migrationUse.abandoned.contains(c.name) }
        let undo =
            "tide migrations down \(c.name) --env \(c.environment) undoes it if you decide to (check first that "
            + "no renamed migration uses what it added)"
        if !abandoned.isEmpty {
            return .leftAlone(
                "no version needs it any more, but \(names(abandoned)) moved on without it other than by a "
                    + "rollback (a newer version, a rename): left in place; \(undo)")
        }
        guard !released.isEmpty else {
            return .leftAlone(
                "applied, but nothing desired or running needs it (a failed rollout, a removed service or document, "
                    + "a rename): left in place; \(undo)")
        }
        if !c.otherUsers.isEmpty {
            return .leftAlone(
                "its down is due here, but another install recorded that it runs a version that needs it ("
                    + c.otherUsers.sorted().joined(separator: "; ") + "): left in place; \(undo) once it does not")
        }
        let unsettled = released.filter { $0.phase != .healthy || $0.rollout != nil }
        if !unsettled.isEmpty {
            return .leftAlone("its down waits for \(names(unsettled)) to run healthy on the version rolled back to")
        }
        if !c.laterApplied.isEmpty {
            return .leftAlone(
                "its down waits: " + c.laterApplied.joined(separator: ", ") + " was applied after it on this "
                    + "database and is still applied (it may be built on what \(c.name) added); undo that first")
        }
        let recorded = c.status.expand?.down ?? []
        let current = c.manifest?.expand?.down ?? []
        let statements = current.isEmpty ? recorded : current
        return .down(
            statements: statements,
            reason: "\(names(released)) rolled back to a version without it, and nothing that uses the database "
                + "needs it")
    }

    /// A phase that started and did not finish. A contract that started goes on (the old schema is partly gone:
    /// finishing is the only way forward), and so does a down; each by itself after a crash or a transient failure,
    /// and after a fix when a statement failed. A half-done expand or backfill goes on with the next rollout that
    /// needs it (`prepareMigrations`); until then it is shown, never undone.
    private static func halfDone(_ partial: PartialPhase, _ c: Context) -> MigrationDecision? {
        switch partial.phase {
        case .contract:
            guard let contract = c.manifest?.contract else {
                return .leftAlone(
                    "\(partial.summary); the Migration or its contract is no longer in desired state, so it cannot "
                        + "go on: put it back to finish it")
            }
            guard partial.resumes(with: contract.checksum) else {
                return .leftAlone(
                    "\(partial.summary); it goes on from statement \(partial.done + 1) once that statement is fixed "
                        + "in the manifest (rolling back past it is refused meanwhile)")
            }
            return .contract
        case .down:
            let statements = c.manifest?.expand?.down ?? c.status.expand?.down ?? []
            let checksum = MigrationManifest.Phase.checksum(of: statements, batchSize: nil)
            guard partial.resumes(with: checksum) else {
                return .leftAlone(
                    "\(partial.summary); it goes on from statement \(partial.done + 1) once that statement is fixed "
                        + "in expand.down")
            }
            return .down(statements: statements, reason: "the down that stopped half way goes on")
        case .expand, .backfill:
            let needed =
                c.desired.contains { $0.migrations.contains(c.name) }
                || c.live.contains { $0.migrations.contains(c.name) || $0.rollout?.migrations.contains(c.name) == true }
            return .leftAlone(
                partial.summary
                    + (needed
                        ? "; it goes on from statement \(partial.done + 1) before the next rollout that needs it"
                        : "; nothing needs it now: left as it is (tide migrations down \(c.name) --env "
                            + "\(c.environment) undoes it if you decide to)"))
        default:
            return nil
        }
    }

    /// Who would run without what the contract keeps, or nil when nobody would.
    private static func contractBlockers(_ c: Context) -> String? {
        let desiredByID = Dictionary(c.desired.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let liveByID = Dictionary(c.live.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var blockers: [String] = []
        for id in c.users.sorted(by: { $0.description < $1.description }) {
            let wanted = desiredByID[id]
            if let wanted, !wanted.migrations.contains(c.name) {
                blockers.append("\(id) is to run \(wanted.version), which does not list it")
                continue
            }
            guard let live = liveByID[id] else {
                if wanted != nil { blockers.append("\(id) has not rolled out yet") }
                continue
            }
            if live.rollout != nil || live.phase != .healthy {
                blockers.append("\(id) is \(live.phase.rawValue)")
            } else if !live.migrations.contains(c.name) {
                blockers.append("\(id) runs \(live.version ?? "nothing"), which does not list it")
            } else if let wanted, live.version != wanted.version || live.configDigest != wanted.configDigest {
                blockers.append("\(id) has not rolled out \(wanted.version) yet")
            }
        }
        return blockers.isEmpty ? nil : blockers.joined(separator: "; ")
    }

    private static func names(_ targets: [LiveTarget]) -> String {
        targets.map(\.id.description).sorted().joined(separator: ", ")
    }
}
