public import Foundation
public import TideManifest

/// One row of the history table in the target database: a phase applied (or undone), a phase under way, or what
/// another install says about its use of a migration.
public struct MigrationRecord: Sendable, Hashable, Codable {
    public enum Phase: String, Sendable, Hashable, Codable {
        case expand, backfill, contract
        /// expand's `down`: the migration was undone before contract.
        case down
        /// A phase that runs statement by statement (`transaction: false`) has started and is not finished:
        /// `detail` says which phase, how many statements are done, and why it stopped if it did. Written before
        /// the first statement and after each one, so a crash or a failure half way is never taken for "as
        /// before". Also written (with no statement done) when a `down` fails, so its fix can run.
        case partial
        /// Another install runs, or rolls out, a version that needs the migration (no statements): its owner
        /// neither contracts it nor undoes it while this row holds.
        case use
        /// That install's targets run healthy versions that list the migration: its use no longer holds the
        /// contract (it still holds the down).
        case ready
        /// That install needs the migration no more: its use holds nothing.
        case unused
        /// A person released another install's use (`tide migrations release`): `detail.install` names it.
        case released
        /// A person gave the migration to this row's owner (`tide migrations adopt`): `detail.install` names the
        /// owner it had.
        case adopted
    }

    /// What a row says besides its phase: a phase under way, the install a person released or adopted from.
    public struct Detail: Sendable, Hashable, Codable {
        /// `partial`: the phase under way (expand, backfill, contract, down).
        public var of: Phase?
        /// `partial`: statements done, and how many the phase has.
        public var done: Int?
        public var total: Int?
        /// `partial`: the checksum of the statements done (a fix may change only those after them).
        public var doneChecksum: String?
        /// `partial`: why the phase stopped (nil while it runs, or when Tide was killed), and whether that was
        /// transient (the database out of reach: it goes on by itself; otherwise it waits for a fix).
        public var failure: String?
        public var transient: Bool?
        /// `released`, `adopted`: the install meant.
        public var install: String?

        public init(
            of: Phase? = nil, done: Int? = nil, total: Int? = nil, doneChecksum: String? = nil,
            failure: String? = nil, transient: Bool? = nil, install: String? = nil
        ) {
            self.transient = transient
            self.of = of
            self.done = done
            self.total = total
            self.doneChecksum = doneChecksum
            self.failure = failure
            self.install = install
        }
    }

    public var name: String
    public var phase: Phase
    public var checksum: String
    /// The config-repo revision that asked for it.
    public var revision: String
    public var appliedAt: Date
    public var durationMilliseconds: Int
    /// For expand: its `down` statements, kept so the migration can be undone even after the manifest is gone
    /// (a revert commit usually removes it).
    public var down: [String]
    /// Which Tide install wrote it (`MigrationOwner.id`); nil for rows written before owners were recorded.
    public var owner: String?
    /// For expand: false when its phase said `transaction: false`, so its `down` runs that way too.
    public var downInTransaction = true
    public var detail: Detail?

    public init(
        name: String, phase: Phase, checksum: String, revision: String, appliedAt: Date, durationMilliseconds: Int,
        down: [String] = [], owner: String? = nil, detail: Detail? = nil
    ) {
        self.owner = owner
        self.name = name
        self.phase = phase
        self.checksum = checksum
        self.revision = revision
        self.appliedAt = appliedAt
        self.durationMilliseconds = durationMilliseconds
        self.down = down
        self.detail = detail
    }

    /// The install id of `owner` (without the environment the row was written for).
    public static func install(_ owner: String) -> String {
        owner.components(separatedBy: " env=").first ?? owner
    }
}

/// A phase that started statement by statement and did not finish (a failure, a crash).
public struct PartialPhase: Sendable, Hashable {
    public var phase: MigrationRecord.Phase
    public var done: Int
    public var total: Int
    /// The checksum of the whole phase as it started, and of the statements done.
    public var checksum: String
    public var doneChecksum: String?
    /// Why it stopped; nil when Tide was killed (or is running it now).
    public var failure: String?
    /// The failure was transient (the database out of reach): it goes on by itself.
    public var transient: Bool
    public var at: Date
    public var owner: String?

    /// Whether running it again can go on without a person: Tide was killed in it, or it failed transiently, or
    /// the phase's statements changed since it stopped (a fix, committed).
    public func resumes(with checksum: String) -> Bool {
        failure == nil || transient || checksum != self.checksum
    }

    /// "contract: 1 of 2 statements done (the second failed: …)".
    public var summary: String {
        var text = "\(phase.rawValue) half done: \(done) of \(total) statement\(total == 1 ? "" : "s") applied"
        if let failure {
            text += "; statement \(done + 1) failed: \(failure)"
        } else if done < total {
            text += "; statement \(done + 1) may or may not have run (Tide stopped while it ran)"
        }
        return text
    }
}

/// Where one migration stands in one database, folded from its history rows.
public struct MigrationStatus: Sendable, Hashable {
    public var expand: MigrationRecord?
    public var backfill: MigrationRecord?
    public var contract: MigrationRecord?
    /// A phase that started and did not finish.
    public var partial: PartialPhase?
    /// Where its current history starts among all rows of the database (its first row since it was last undone):
    /// migrations applied later may be built on it.
    public var sequence: Int = 0
    /// Installs other than the owner that recorded they use it, and whether their targets are settled on it
    /// (`ready`: the contract may run; the down still may not).
    public var users: [String: Bool] = [:]
    /// The install a person gave it to (`tide migrations adopt`), and the owner it had.
    public var adoptedBy: String?
    public var adoptedFrom: String?
    /// When the owner or another install last wrote a row about it (for `adopt`: whether its old owner is alive).
    public var lastWritten: [String: Date] = [:]

    public init() {}

    /// Installs that recorded they use it (ready or not).
    public var usedBy: Set<String> { Set(users.keys) }

    /// Installs whose use holds the contract (they have targets not yet settled on a version that lists it).
    public var unsettledUsers: [String] { users.filter { !$0.value }.keys.sorted() }

    /// Expanded (or, for a migration without expand, started), possibly half way, and not undone.
    public var isApplied: Bool { expand != nil || backfill != nil || contract != nil || partial != nil }

    /// A contract that ran, or started: either way the old schema may be gone, so it counts as contracted for
    /// every refusal.
    public var contractStarted: Date? {
        contract?.appliedAt ?? (partial?.phase == .contract ? partial?.at : nil)
    }

    /// The install that applied it (the owner of its first phase row, or who adopted it); nil for rows from
    /// before owners.
    public var owner: String? {
        adoptedBy ?? (expand ?? backfill ?? contract)?.owner ?? partial?.owner
    }

    public func record(_ phase: MigrationManifest.PhaseName) -> MigrationRecord? {
        switch phase {
        case .expand: expand
        case .backfill: backfill
        case .contract: contract
        }
    }

    /// The partial run of `phase`, if it is the one under way.
    public func partial(_ phase: MigrationManifest.PhaseName) -> PartialPhase? {
        partial.flatMap { $0.phase.rawValue == phase.rawValue ? $0 : nil }
    }

    /// The word for where it stands: pending, expanded, backfilled, contracted, or "contract half done".
    public var phaseName: String {
        if let partial { return "\(partial.phase.rawValue) half done" }
        if contract != nil { return "contracted" }
        if backfill != nil { return "backfilled" }
        if expand != nil { return "expanded" }
        return "pending"
    }

    /// Every migration's status, from history rows in the order they were written.
    public static func fold(_ records: [MigrationRecord]) -> [String: MigrationStatus] {
        var result: [String: MigrationStatus] = [:]
        for (index, record) in records.enumerated() {
            var status = result[record.name] ?? MigrationStatus()
            if !status.isApplied && [.expand, .backfill, .contract, .partial].contains(record.phase) {
                status.sequence = index
            }
            if let owner = record.owner { status.lastWritten[MigrationRecord.install(owner)] = record.appliedAt }
            switch record.phase {
            case .expand, .backfill, .contract:
                if record.phase == .expand { status.expand = record }
                if record.phase == .backfill { status.backfill = record }
                if record.phase == .contract { status.contract = record }
                if status.partial?.phase == record.phase { status.partial = nil }
            case .down:
                // Undone: what is applied again later is a new history (uses are recorded anew).
                let written = status.lastWritten
                status = MigrationStatus()
                status.lastWritten = written
            case .partial:
                let detail = record.detail ?? MigrationRecord.Detail()
                status.partial = PartialPhase(
                    phase: detail.of ?? .expand, done: detail.done ?? 0, total: detail.total ?? 0,
                    checksum: record.checksum, doneChecksum: detail.doneChecksum, failure: detail.failure,
                    transient: detail.transient ?? false,
                    at: status.partial?.phase == detail.of
                        ? (status.partial?.at ?? record.appliedAt) : record.appliedAt,
                    owner: record.owner)
            case .use, .ready:
                if let owner = record.owner { status.users[MigrationRecord.install(owner)] = record.phase == .ready }
            case .unused:
                if let owner = record.owner { status.users[MigrationRecord.install(owner)] = nil }
            case .released:
                if let install = record.detail?.install { status.users[MigrationRecord.install(install)] = nil }
            case .adopted:
                status.adoptedFrom = record.detail?.install
                status.adoptedBy = record.owner.map(MigrationRecord.install)
            }
            result[record.name] = status
        }
        return result
    }
}
