import Foundation
internal import GRDB
import TideManifest

#if canImport(Glibc)
    import Glibc
#endif

/// A migration target in an SQLite file, through GRDB. `BEGIN IMMEDIATE` is the lock: one writer at a time,
/// others wait (busy timeout) and then see what it wrote. Waiting is bounded by the executor's `timeout`: the
/// busy timeout is no longer, and a statement still running at the phase's deadline is interrupted.
final class SQLiteMigrationDatabase: MigrationDatabase {
    private let queue: DatabaseQueue
    private let path: String
    private let limits: MigrationLimits

    init(path: String, limits: MigrationLimits = MigrationLimits()) throws {
        self.path = path
        self.limits = limits
        var configuration = Configuration()
        configuration.busyMode = .timeout(Double(limits.phase / .milliseconds(1)) / 1000)
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.writeWithoutTransaction { db in
                try db.execute(
                    sql: """
                        CREATE TABLE IF NOT EXISTS tide_migrations (
                            id INTEGER PRIMARY KEY AUTOINCREMENT,
                            name TEXT NOT NULL,
                            phase TEXT NOT NULL,
                            checksum TEXT NOT NULL,
                            revision TEXT NOT NULL,
                            applied_at TEXT NOT NULL,
                            duration_ms INTEGER NOT NULL,
                            down TEXT NOT NULL DEFAULT '[]'
                        )
                        """)
                // Owners came later: tables made before them get the column (rows without one read as nil).
                let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(tide_migrations)").map {
                    $0["name"] as String
                }
                if !columns.contains("owner") {
                    try db.execute(sql: "ALTER TABLE tide_migrations ADD COLUMN owner TEXT")
                }
                if !columns.contains("down_transaction") {
                    try db.execute(
                        sql: "ALTER TABLE tide_migrations ADD COLUMN down_transaction INTEGER NOT NULL DEFAULT 1")
                }
            }
        } catch {
            var error = Self.classify(error, limits: limits)
            error.description = "cannot open sqlite:\(path): \(error.description)"
            throw error
        }
    }

    func records() async throws -> [MigrationRecord] {
        do {
            return try await bounded(until: .now + limits.phase) {
                try await self.queue.read { try Self.records($0) }
            }
        } catch {
            throw Self.classify(error, limits: limits)
        }
    }

    func apply(
        _ run: MigrationRun, record: MigrationRecord, due: @Sendable ([MigrationRecord]) -> Bool
    ) async throws -> Bool {
        let start = ContinuousClock.now
        let deadline = start + limits.phase
        guard run.transaction else {
            return try await applyOneByOne(run, record: record, due: due, start: start, deadline: deadline)
        }
        var rounds = 0
        while true {
            if run.batchSize != nil && rounds == run.maxRounds {
                throw MigrationError(
                    "the batched backfill ran \(rounds) rounds (spec.backfill.maxRounds) and the last one still "
                        + "changed rows: a statement that changes rows every round never ends; check that each "
                        + "round's UPDATE only picks rows it has not changed yet (WHERE … IS NULL), or raise "
                        + "maxRounds"
                ).keeping("the \(rounds) rounds stay committed")
            }
            let (ran, finished): (Bool, Bool)
            do {
                (ran, finished) = try await bounded(until: deadline) {
                    try await self.queue.writeWithoutTransaction { db -> (Bool, Bool) in
                        var ran = false
                        var finished = false
                        try db.inTransaction(.immediate) {
                            guard due(try Self.records(db)) else { return .rollback }
                            var changed = 0
                            for statement in run.statements {
                                // Rows changed by INSERT, UPDATE and DELETE only: a SELECT leaves it as it is.
                                let before = db.totalChangesCount
                                try db.execute(sql: MigrationDatabases.batched(statement, run.batchSize))
                                changed += db.totalChangesCount - before
                            }
                            ran = true
                            finished = run.batchSize == nil || changed == 0
                            if finished {
                                try Self.insert(record, duration: ContinuousClock.now - start, db)
                            }
                            return .commit
                        }
                        return (ran, finished)
                    }
                }
            } catch {
                let error = Self.classify(error, limits: limits)
                throw rounds > 0 ? error.keeping(rounds: rounds) : error
            }
            guard ran else { return false }
            rounds += 1
            if finished { return true }
        }
    }

    /// `transaction: false`: the statements one by one, each committed on its own, then the history row; a lock
    /// file beside the database keeps another Tide process from doing the same at once.
    private func applyOneByOne(
        _ run: MigrationRun, record: MigrationRecord, due: @Sendable ([MigrationRecord]) -> Bool,
        start: ContinuousClock.Instant, deadline: ContinuousClock.Instant
    ) async throws -> Bool {
        let lock = try await lockFile(until: deadline)
        defer {
            flock(lock, LOCK_UN)
            Glibc.close(lock)
        }
        var done = 0
        do {
            return try await bounded(until: deadline) {
                guard due(try await self.queue.read { try Self.records($0) }) else { return false }
                for statement in run.statements {
                    try await self.queue.writeWithoutTransaction { try $0.execute(sql: statement) }
                    done += 1
                }
                try await self.queue.write { try Self.insert(record, duration: ContinuousClock.now - start, $0) }
                return true
            }
        } catch {
            let error = Self.classify(error, limits: limits)
            throw done > 0 ? error.keeping(statements: done) : error
        }
    }

    /// Takes `PATH-tide.lock` (flock), trying until `deadline`.
    private func lockFile(until deadline: ContinuousClock.Instant) async throws -> Int32 {
        let lockPath = path + "-tide.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw MigrationError("cannot open the lock file \(lockPath): \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, ContinuousClock.now < deadline else {
                let why = errno == EWOULDBLOCK ? "another Tide process held it" : String(cString: strerror(errno))
                Glibc.close(fd)
                throw MigrationError(
                    "cannot lock \(lockPath) within \(MigrationLimits.format(limits.phase)): \(why)",
                    kind: .transient)
            }
            await Monotonic.pause(seconds: 0.05)
        }
        return fd
    }

    func close() async {
        try? queue.close()
    }

    /// Runs `body`, interrupting the statement it runs when `deadline` comes.
    /// Runs `body`, interrupting the database at `deadline`. The timer is `Monotonic`'s, not a task: Swift's
    /// cooperative pool can be busy for seconds, and a deadline must not wait for a thread to come free (nor for a
    /// faked wall clock).
    private func bounded<T>(until deadline: ContinuousClock.Instant, _ body: () async throws -> T) async throws -> T {
        let queue = self.queue
        let left = deadline - .now
        let alarm = Monotonic.after(
            seconds: max(0, Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18)
        ) { queue.interrupt() }
        defer { alarm.cancel() }
        return try await body()
    }

    private static func records(_ db: Database) throws -> [MigrationRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM tide_migrations ORDER BY id").compactMap { row in
            guard let phase = MigrationRecord.Phase(rawValue: row["phase"]) else { return nil }
            let down = (try? JSONDecoder().decode([String].self, from: Data((row["down"] as String).utf8))) ?? []
            var record = MigrationRecord(
                name: row["name"], phase: phase, checksum: row["checksum"], revision: row["revision"],
                appliedAt: ISO8601DateFormatter().date(from: row["applied_at"]) ?? Date(timeIntervalSince1970: 0),
                durationMilliseconds: row["duration_ms"], down: down, owner: row["owner"])
            record.downInTransaction = row["down_transaction"]
            return record
        }
    }

    private static func insert(_ record: MigrationRecord, duration: Duration, _ db: Database) throws {
        let down = String(decoding: try JSONEncoder().encode(record.down), as: UTF8.self)
        try db.execute(
            sql: """
                INSERT INTO tide_migrations
                    (name, phase, checksum, revision, applied_at, duration_ms, down, owner, down_transaction)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                record.name, record.phase.rawValue, record.checksum, record.revision,
                ISO8601DateFormatter().string(from: record.appliedAt), Int(duration / .milliseconds(1)), down,
                record.owner, record.downInTransaction,
            ])
    }

    /// A `MigrationError` for an error of GRDB: busy and locked databases and an interrupted statement (the
    /// deadline) are transient.
    static func classify(_ error: any Error, limits: MigrationLimits) -> MigrationError {
        if let error = error as? MigrationError { return error }
        guard let error = error as? DatabaseError else { return MigrationError("\(error)") }
        if error.isInterruptionError {
            return MigrationError.deadline("the phase", after: limits.phase)
        }
        let transient = [ResultCode.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode)
        return MigrationError(describe(error), kind: transient ? .transient : .permanent)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return error.message ?? "\(error)"
        }
        return "\(error)"
    }
}
