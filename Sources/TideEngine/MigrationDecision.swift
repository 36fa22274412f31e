public import Foundation
public import TideExecutors
public import TideManifest
public import TideState

/// What Tide does, by itself, about one applied migration in one database: the rules for `down` and `contract`.
///
/// What must never happen (each is a test on SQLite and PostgreSQL, MigrationSafetyTests):
/// - a `down` as the side effect of a failed forward rollout, a transient error, a missing document, a rename, or
///   another install: a down runs only after an explicit rollback (a ROLLBACK deployment that finished healthy)
///   took every target that needed the migration back to a version without it;
/// - a `contract` while any target that uses the database (its service's migrations or `databases` name it, or
///   one of its versions ever did) runs, rolls out, or wants a version that does not list the migration;
/// - any action on a migration another install applied (its history rows carry that install as owner).
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
        let wanters = c.desired.filter { $0.migrations.contains(c.name) }
        let running = c.live.filter {
            $0.migrations.contains(c.name) || $0.rollout?.migrations.contains(c.name) == true
        }
        if wanters.isEmpty && running.isEmpty {
            return unneeded(c)
        }
        guard !wanters.isEmpty, let contract = c.manifest?.contract else { return .inUse }
        if let blockers = contractBlockers(c) { return .contractBlocked(blockers) }
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
        let recorded = c.status.expand?.down ?? []
        let current = c.manifest?.expand?.down ?? []
        let statements = current.isEmpty ? recorded : current
        return .down(
            statements: statements,
            reason: "\(names(released)) rolled back to a version without it, and nothing that uses the database "
                + "needs it")
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
