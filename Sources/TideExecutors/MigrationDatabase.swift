import Foundation
public import TideManifest

/// Why a migration phase could not run.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    /// Whether the same phase can succeed later without anyone changing anything.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// The database was out of reach or busy: the connection was refused, lost or timed out, the server was
        /// shutting down or starting (SQLSTATE 57P01, 57P02, 57P03, class 08), a lock was not granted in time
        /// (55P03), the transaction lost a race (40001, 40P01), SQLite was busy or locked, or the phase ran out of
        /// time. Retry with backoff.
        case transient
        /// The statements, the URL, the credentials or the certificate are wrong (a syntax error, a missing
        /// table, a failed login): trying again gives the same error until desired state or the setup changes.
        case permanent
    }

    public var description: String
    public var kind: Kind
    /// The PostgreSQL error code, when the server gave one.
    public var sqlState: String?
    /// Part of the phase's work is committed although its history row is not: rounds of a batched backfill, or
    /// the statements before the failing one in a `transaction: false` phase. Running the phase again goes on from
    /// there. False means the database is as it was before the phase.
    public var partial: Bool
    /// A `transaction: false` phase: how many of its statements are applied (it is recorded as half done).
    public var done: Int?

    /// Retrying later can succeed (see `Kind.transient`).
    public var isTransient: Bool { kind == .transient }

    public init(_ description: String, kind: Kind = .permanent, sqlState: String? = nil, partial: Bool = false) {
        self.description = description
        self.kind = kind
        self.sqlState = sqlState
        self.partial = partial
    }

    /// The same error, marked as leaving committed work behind, with what was kept said in its description.
    func keeping(_ what: String) -> MigrationError {
        var error = self
        error.partial = true
        error.description += "; \(what)"
        return error
    }

    /// After `count` rounds of a batched backfill.
    func keeping(rounds count: Int) -> MigrationError {
        keeping(
            count == 1
                ? "the round before it stays committed, and the backfill goes on from there when it runs again"
                : "the \(count) rounds before it stay committed, and the backfill goes on from there when it runs "
                    + "again")
    }

    /// A `transaction: false` phase that stopped after `count` of its `total` statements: recorded as half done.
    func keeping(statements count: Int, of total: Int) -> MigrationError {
        var error = keeping(
            (count == 0
                ? "no statement of it is applied, but the phase is recorded as started"
                : "\(count) of its \(total) statements stay applied") + " (transaction: false): it is half done, "
                + "and goes on from statement \(count + 1) when it runs again (fix that statement in the manifest if "
                + "it is wrong; the ones before it cannot change)")
        error.done = count
        error.partial = count > 0
        return error
    }

    /// The phase ran out of its own time (the sql executor's `timeout`): not the database's fault, and running
    /// it again would run out again — it fails, with what it did, for a person to look at (raise `timeout`, make
    /// the statement cheaper, or batch it).
    static func deadline(_ what: String, after limit: Duration) -> MigrationError {
        MigrationError(
            "\(what) did not finish within \(MigrationLimits.format(limit)) (the sql executor's timeout); it is not "
                + "tried again by itself: raise the executor's timeout, or make the phase cheaper (batchSize for a "
                + "backfill), and tide retry",
            kind: .permanent)
    }
}

/// How long a migration database may take: the sql executor's `timeout` bounds each phase.
public struct MigrationLimits: Sendable, Hashable {
    /// One phase — all its statements and, for a batched backfill, all its rounds — and reading the history.
    /// PostgreSQL: `statement_timeout`, and the client closes a connection that does not answer in that time;
    /// SQLite: the busy timeout, and the statement is interrupted.
    public var phase: Duration
    /// Opening a connection (TCP, TLS, login).
    public var connect: Duration
    /// PostgreSQL: `lock_timeout` for each try of a phase (or a backfill round), so that a statement waiting for a
    /// table lock does not hold up the application's queries queued behind it for longer than this.
    public var lock: Duration
    /// PostgreSQL: how many times a phase (or a round) is tried when it did not get its locks (55P03), or lost a
    /// serialization race or a deadlock (40001, 40P01), with a growing pause between tries.
    public var lockAttempts: Int

    public init(
        phase: Duration = .seconds(300), connect: Duration? = nil, lock: Duration = .seconds(2), lockAttempts: Int = 10
    ) {
        self.phase = phase
        self.connect = connect ?? min(phase, .seconds(10))
        self.lock = lock
        self.lockAttempts = max(1, lockAttempts)
    }

    /// The limits of a sql executor: its `timeout` for each phase.
    public init(_ executor: ExecutorManifest) {
        self.init(phase: .milliseconds(Int64((executor.timeout * 1000).rounded())))
    }

    /// The pause before try `attempt` (1, 2, …): 100 ms doubling up to 2 s, with jitter so two Tide processes
    /// do not retry in step.
    func backoff(_ attempt: Int) -> Duration {
        let base = min(100 * (1 << min(attempt - 1, 5)), 2000)
        return .milliseconds(base / 2 + Int.random(in: 0...(base / 2)))
    }

    static func format(_ duration: Duration) -> String {
        ManifestDuration.format(Double(duration / .milliseconds(1)) / 1000)
    }
}

/// What `MigrationDatabase.apply` runs, and how.
public struct MigrationRun: Sendable, Hashable {
    public var statements: [String]
    /// A batched backfill: `{{batch}}` in the statements becomes this, and they are repeated, one transaction per
    /// round, until a round's INSERT, UPDATE, DELETE and MERGE statements change no row.
    public var batchSize: Int?
    /// A batched backfill stops with an error after this many rounds.
    public var maxRounds: Int
    /// false: one statement at a time, outside a transaction (`CREATE INDEX CONCURRENTLY`).
    public var transaction: Bool
    /// `transaction: false`: the statements a partial run already applied (see `PartialPhase`): the run goes on
    /// from the next one.
    public var resumeFrom = 0

    public init(
        _ statements: [String], batchSize: Int? = nil, maxRounds: Int = MigrationManifest.Phase.defaultMaxRounds,
        transaction: Bool = true
    ) {
        self.statements = statements
        self.batchSize = batchSize
        self.maxRounds = maxRounds
        self.transaction = transaction
    }

    /// A phase's `up`, run as the manifest says.
    public init(_ phase: MigrationManifest.Phase) {
        self.init(phase.up, batchSize: phase.batchSize, maxRounds: phase.maxRounds, transaction: phase.transaction)
    }

    /// The `down` an expand recorded, run as that expand ran (`transaction`).
    public init(down expand: MigrationRecord) {
        self.init(expand.down, transaction: expand.downInTransaction)
    }

    /// The checksum of the statements a partial run did, recorded with each progress row: a fix may change the
    /// statements after them, never those.
    public func doneChecksum(_ done: Int) -> String {
        MigrationManifest.Phase.checksum(of: Array(statements.prefix(done)), batchSize: nil)
    }

    /// A batched backfill that takes fewer rows than a batch round after round, the same number each time, is
    /// changing rows it already changed (its `WHERE` still matches them: `SET email = lower(mail) WHERE email IS
    /// NULL` where `mail` is NULL): it would run until `maxRounds`. Three such rounds in a row stop it, with why.
    static func notConverging(_ changes: [Int], batch: Int) -> String? {
        guard changes.count >= 3 else { return nil }
        let last = changes.suffix(3)
        guard let count = last.first, count > 0, count < batch, last.allSatisfy({ $0 == count }) else { return nil }
        return "the batched backfill changed the same \(count) row\(count == 1 ? "" : "s") in each of its last 3 "
            + "rounds (fewer than a batch of \(batch)): its statements match rows they already changed and would "
            + "never finish; make the WHERE clause skip rows it cannot change (or changed already), then tide retry"
    }

    /// What one transaction of a phase did.
    enum RoundOutcome: Sendable {
        /// Another process did it: nothing ran.
        case notDue
        /// The phase is done and recorded.
        case finished
        /// A batched round changed this many rows: another round follows.
        case changed(Int)
    }

    /// Runs the phase in transactions — one, or for a batched backfill one per round until a round changes no
    /// row — each by `round`; whether it ran (false: another process had done it). A failure is `classify`'d and
    /// says how many rounds stay committed and what the last ones changed; a backfill that reaches `maxRounds`
    /// or stops converging fails with why.
    func inRounds(
        _ round: () async throws -> RoundOutcome, classify: (any Error) -> MigrationError
    ) async throws -> Bool {
        var rounds = 0
        var changes: [Int] = []
        while true {
            if batchSize != nil && rounds == maxRounds {
                throw MigrationError(
                    "the batched backfill ran \(rounds) rounds (spec.backfill.maxRounds) and the last one still "
                        + "changed rows: a statement that changes rows every round never ends; check that each "
                        + "round's UPDATE only picks rows it has not changed yet (WHERE … IS NULL), or raise "
                        + "maxRounds"
                ).keeping("the \(rounds) rounds stay committed")
            }
            let outcome: RoundOutcome
            do {
                outcome = try await round()
            } catch {
                var error = classify(error)
                if !changes.isEmpty, !error.isTransient { error.description += Self.rounds(changes) }
                throw rounds > 0 ? error.keeping(rounds: rounds) : error
            }
            rounds += 1
            switch outcome {
            case .notDue: return false
            case .finished: return true
            case .changed(let count):
                changes.append(count)
                if let batch = batchSize, let stuck = Self.notConverging(changes, batch: batch) {
                    throw MigrationError(stuck).keeping(rounds: rounds)
                }
            }
        }
    }

    /// What a failed batched backfill says about its rounds: how many ran, and what the last ones changed.
    static func rounds(_ changes: [Int]) -> String {
        " (after \(changes.count) round\(changes.count == 1 ? "" : "s"); rows changed in the last rounds: "
            + changes.suffix(5).map(String.init).joined(separator: ", ") + ")"
    }

    /// The progress row of a statement-by-statement run of `record`'s phase: `done` statements applied.
    public func progress(_ record: MigrationRecord, done: Int, failure: MigrationError? = nil) -> MigrationRecord {
        var row = MigrationRecord(
            name: record.name, phase: .partial, checksum: record.checksum, revision: record.revision,
            appliedAt: record.appliedAt, durationMilliseconds: 0, owner: record.owner,
            detail: MigrationRecord.Detail(
                of: record.phase, done: done, total: statements.count, doneChecksum: doneChecksum(done),
                failure: failure?.description, transient: failure.map(\.isTransient)))
        row.durationMilliseconds = 0
        return row
    }
}

/// One environment's database, as a `sql` executor reaches it.
///
/// Every phase runs under the database's migration lock (PostgreSQL: a transaction-level advisory lock; SQLite:
/// `BEGIN IMMEDIATE`), in one transaction with its history row, after checking — with the lock held — that it is
/// still due: two Tide processes on one database apply each phase once. Every wait is bounded (`MigrationLimits`),
/// and every error is a `MigrationError` that says whether it is transient.
public protocol MigrationDatabase: Sendable {
    /// The history table's rows, oldest first; none when there is no table (reading never creates it).
    func records() async throws -> [MigrationRecord]

    /// Runs `run` and writes `record`, in one transaction under the lock, unless `due` says otherwise once the
    /// lock is held (another process did it). Returns whether it ran.
    ///
    /// A batched backfill commits each round on its own (the record with the last one): when it fails, the rounds
    /// before stay (`MigrationError.partial`). With `transaction: false` the statements run one by one under a
    /// session-level lock (PostgreSQL `pg_advisory_lock`, SQLite a lock file), a progress row (`partial`) before
    /// the first and after each, and the record after the last one; when one fails, those before it stay and the
    /// phase is recorded half done (`run.resumeFrom` goes on from there).
    func apply(
        _ run: MigrationRun, record: MigrationRecord, due: @Sendable ([MigrationRecord]) -> Bool
    ) async throws -> Bool

    func close() async
}

extension MigrationDatabase {
    /// Runs `statements` in one transaction (with `batchSize`: a batched backfill); see `apply(_:record:due:)`.
    public func apply(
        _ statements: [String], record: MigrationRecord, batchSize: Int?,
        due: @Sendable ([MigrationRecord]) -> Bool
    ) async throws -> Bool {
        try await apply(MigrationRun(statements, batchSize: batchSize), record: record, due: due)
    }

    /// Runs a phase's `up` as the manifest says (batches, rounds, `transaction`); an expand's record keeps
    /// whether its `down` runs in a transaction.
    public func apply(
        _ phase: MigrationManifest.Phase, run: MigrationRun? = nil, record: MigrationRecord,
        due: @Sendable ([MigrationRecord]) -> Bool
    ) async throws -> Bool {
        var record = record
        if record.phase == .expand {
            record.down = phase.down
            record.downInTransaction = phase.transaction
        }
        return try await apply(run ?? MigrationRun(phase), record: record, due: due)
    }
}

/// Opens the database a `sql` executor names for an environment.
public enum MigrationDatabases {
    /// `limits`: by default the executor's (`timeout` bounds each phase).
    public static func open(
        _ executor: ExecutorManifest, environment: String, workingDirectory: String, limits: MigrationLimits? = nil
    ) async throws -> any MigrationDatabase {
        guard let database = executor.database, let url = database.url(for: environment) else {
            throw MigrationError("executor '\(executor.name)' has no database for \(environment)")
        }
        let limits = limits ?? MigrationLimits(executor)
        switch url {
        case .sqlite(let path):
            return try SQLiteMigrationDatabase(path: resolve(path, workingDirectory), limits: limits)
        case .postgres(let user, let host, let port, let name, let tls):
            let password = try database.password.map { try Self.password(from: $0, workingDirectory: workingDirectory) }
            return try await PostgresMigrationDatabase.connect(
                host: host, port: port, user: user, password: password, database: name,
                tls: try PostgresMigrationDatabase.tls(tls, workingDirectory: workingDirectory), limits: limits)
        }
    }

    static func resolve(_ path: String, _ workingDirectory: String) -> String {
        path.hasPrefix("/") ? path : (workingDirectory as NSString).appendingPathComponent(path)
    }

    static func password(from source: PasswordSource, workingDirectory: String) throws -> String {
        do {
            return try SecretReading.read(source, what: "database password")
        } catch {
            throw MigrationError("\(error)")
        }
    }

    /// `{{batch}}` → the batch size.
    static func batched(_ statement: String, _ size: Int?) -> String {
        guard let size else { return statement }
        return statement.replacingOccurrences(of: "{{batch}}", with: String(size))
    }
}
