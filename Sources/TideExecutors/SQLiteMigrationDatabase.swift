import Foundation
internal import GRDB
import Synchronization
import TideManifest

#if canImport(Glibc)
    import Glibc
#endif

/// A migration target in an SQLite file, through GRDB. `BEGIN IMMEDIATE` is the lock: one writer at a time.
///
/// Nothing waits without bound, and Tide does not hold up the application: the database is switched to WAL the
/// first time Tide writes to it (readers go on while Tide writes — Tide requires an application that can use WAL,
/// i.e. a database on a local file system), each try waits at most `lock` for the write lock (the busy timeout)
/// and is tried again a bounded number of times with a pause, and a statement still running at the phase's
/// deadline is interrupted. Reading never creates the file or the history table.
final class SQLiteMigrationDatabase: MigrationDatabase {
    private let path: String
    private let limits: MigrationLimits
    private let opened = Mutex<DatabaseQueue?>(nil)
    /// Set once the history table is known to have every column (and the journal is WAL).
    private let prepared = Mutex(false)

    init(path: String, limits: MigrationLimits = MigrationLimits()) throws {
        self.path = path
        self.limits = limits
    }

    /// The open database; nil when the file does not exist and `create` is false.
    private func queue(create: Bool) throws -> DatabaseQueue? {
        if let queue = opened.withLock({ $0 }) { return queue }
        if !create && !FileManager.default.fileExists(atPath: path) { return nil }
        var configuration = Configuration()
        configuration.busyMode = .timeout(Double(limits.lock / .milliseconds(1)) / 1000)
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            opened.withLock { $0 = queue }
            return queue
        } catch let error as DatabaseError where [.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode) {
            throw error  // tried again by the caller
        } catch {
            var error = Self.classify(error, limits: limits)
            error.description = "cannot open sqlite:\(path): \(error.description)"
            throw error
        }
    }

    /// Before the first write: WAL, and the history table with every column.
    private func prepare() throws -> DatabaseQueue {
        guard let queue = try queue(create: true) else { throw MigrationError("cannot open sqlite:\(path)") }
        if prepared.withLock({ $0 }) { return queue }
        do {
            try queue.writeWithoutTransaction { db in
                // Persistent: readers are not blocked by Tide's writes from now on.
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            }
            // Under the write lock: two processes adding the same column at once would collide.
            try queue.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
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
                    // Columns later versions added: tables made before them get them (old rows read as NULL).
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
                    if !columns.contains("detail") {
                        try db.execute(sql: "ALTER TABLE tide_migrations ADD COLUMN detail TEXT")
                    }

                    return .commit
                }
            }
        } catch let error as DatabaseError where [.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode) {
            throw error  // tried again by the caller
        } catch {
            var error = Self.classify(error, limits: limits)
            error.description = "cannot set up the migration history in sqlite:\(path): \(error.description)"
            throw error
        }
        prepared.withLock { $0 = true }
        return queue
    }

    func records() async throws -> [MigrationRecord] {
        do {
            let deadline = ContinuousClock.now + limits.phase
            guard let queue = try await withBusyRetries(until: deadline, { try self.queue(create: false) }) else {
                return []
            }
            return try await withBusyRetries(until: deadline) {
                try await self.bounded(queue, until: .now + self.limits.phase) {
                    try await queue.read { db in
                        try db.tableExists("tide_migrations") ? try Self.records(db) : []
                    }
                }
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
        let queue = try await withBusyRetries(until: deadline) { try self.prepare() }
        guard run.transaction else {
            return try await applyOneByOne(
                run, queue: queue, record: record, due: due, start: start, deadline: deadline)
        }
        return try await run.inRounds(
            {
                try await withBusyRetries(until: deadline) {
                    try await self.bounded(queue, until: deadline) {
                        try await queue.writeWithoutTransaction { db in
                            try Self.round(run, record: record, due: due, start: start, db)
                        }
                    }
                }
            }, classify: { Self.classify($0, limits: self.limits) })
    }

    /// One round in one immediate transaction: the check that the phase is still due, the statements, and — when
    /// it is the last round — the history row.
    private static func round(
        _ run: MigrationRun, record: MigrationRecord, due: @Sendable ([MigrationRecord]) -> Bool,
        start: ContinuousClock.Instant, _ db: Database
    ) throws -> MigrationRun.RoundOutcome {
        var outcome = MigrationRun.RoundOutcome.notDue
        try db.inTransaction(.immediate) {
            guard due(try records(db)) else { return .rollback }
            var changed = 0
            for statement in run.statements {
                // Rows changed by INSERT, UPDATE and DELETE only: a SELECT leaves it as it is.
                let before = db.totalChangesCount
                try db.execute(sql: MigrationDatabases.batched(statement, run.batchSize))
                changed += db.totalChangesCount - before
            }
            let finished = run.batchSize == nil || changed == 0
            if finished { try insert(record, duration: ContinuousClock.now - start, db) }
            outcome = finished ? .finished : .changed(changed)
            return .commit
        }
        return outcome
    }

    /// `transaction: false`: the statements one by one, each committed on its own, then the history row; a lock
    /// file beside the database keeps another Tide process from doing the same at once. A progress row goes in
    /// before the first statement and with each one (in its transaction: SQLite's DDL is transactional), so a
    /// phase that fails or is killed half way is known as half done and goes on from the next statement.
    private func applyOneByOne(
        _ run: MigrationRun, queue: DatabaseQueue, record: MigrationRecord,
        due: @Sendable ([MigrationRecord]) -> Bool, start: ContinuousClock.Instant, deadline: ContinuousClock.Instant
    ) async throws -> Bool {
        let lock = try await lockFile(until: deadline)
        defer {
            flock(lock, LOCK_UN)
            Glibc.close(lock)
        }
        var done = run.resumeFrom
        var started = false
        do {
            guard
                due(
                    try await withBusyRetries(until: deadline) {
                        try await queue.read { try Self.records($0) }
                    })
            else { return false }
            let first = run.progress(record, done: done)
            try await withBusyRetries(until: deadline) {
                try await queue.write { try Self.insert(first, duration: .zero, $0) }
            }
            started = true
            for statement in run.statements.dropFirst(done) {
                let next = run.progress(record, done: done + 1)
                let last = done + 1 == run.statements.count
                try await withBusyRetries(until: deadline) {
                    try await self.bounded(queue, until: deadline) {
                        if MigrationManifest.needsNoTransaction(statement) {
                            // VACUUM refuses a transaction: the statement, then its progress row.
                            try await queue.writeWithoutTransaction { try $0.execute(sql: statement) }
                            if !last { try await queue.write { try Self.insert(next, duration: .zero, $0) } }
                        } else {
                            try await queue.write { db in
                                try db.execute(sql: statement)
                                if !last { try Self.insert(next, duration: .zero, db) }
                            }
                        }
                    }
                }
                done += 1
            }
            try await withBusyRetries(until: deadline) {
                try await queue.write { try Self.insert(record, duration: ContinuousClock.now - start, $0) }
            }
            return true
        } catch {
            let error = Self.classify(error, limits: limits)
            if started {
                let stopped = run.progress(record, done: done, failure: error)
                _ = try? await queue.write { try Self.insert(stopped, duration: .zero, $0) }
            }
            throw started ? error.keeping(statements: done, of: run.statements.count) : error
        }
    }

    /// Runs `body` again after a pause when the database stayed locked for the busy timeout (`lock`): at most
    /// `lockAttempts` times, never past `deadline`.
    private func withBusyRetries<T>(
        until deadline: ContinuousClock.Instant, _ body: () async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let error as DatabaseError where [.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode) {
                let pause = limits.backoff(attempt)
                guard attempt < limits.lockAttempts, ContinuousClock.now + pause < deadline else {
                    var failure = Self.classify(error, limits: limits)
                    failure.description +=
                        " (tried \(attempt) time\(attempt == 1 ? "" : "s"), each waiting at most "
                        + "\(MigrationLimits.format(limits.lock)) for the database's lock)"
                    throw failure
                }
                await Monotonic.pause(
                    seconds: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18)
                attempt += 1
            }
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
        try? opened.withLock { $0 }?.close()
    }

    /// Runs `body`, interrupting the database at `deadline`. The timer is `Monotonic`'s, not a task: Swift's
    /// cooperative pool can be busy for seconds, and a deadline must not wait for a thread to come free (nor for a
    /// faked wall clock).
    private func bounded<T>(
        _ queue: DatabaseQueue, until deadline: ContinuousClock.Instant, _ body: () async throws -> T
    ) async throws -> T {
        let left = deadline - .now
        let alarm = Monotonic.after(
            seconds: max(0, Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18)
        ) { queue.interrupt() }
        defer { alarm.cancel() }
        return try await body()
    }

    private static func records(_ db: Database) throws -> [MigrationRecord] {
        let columns = Set(try Row.fetchAll(db, sql: "PRAGMA table_info(tide_migrations)").map { $0["name"] as String })
        return try Row.fetchAll(db, sql: "SELECT * FROM tide_migrations ORDER BY id").compactMap { row in
            guard let phase = MigrationRecord.Phase(rawValue: row["phase"]) else { return nil }
            let down = (try? JSONDecoder().decode([String].self, from: Data((row["down"] as String).utf8))) ?? []
            var record = MigrationRecord(
                name: row["name"], phase: phase, checksum: row["checksum"], revision: row["revision"],
                appliedAt: ISO8601DateFormatter().date(from: row["applied_at"]) ?? Date(timeIntervalSince1970: 0),
                durationMilliseconds: row["duration_ms"], down: down,
                owner: columns.contains("owner") ? row["owner"] : nil)
            record.downInTransaction = columns.contains("down_transaction") ? row["down_transaction"] : true
            if columns.contains("detail"), let detail = row["detail"] as String? {
                record.detail = try? JSONDecoder().decode(MigrationRecord.Detail.self, from: Data(detail.utf8))
            }
            return record
        }
    }

    private static func insert(_ record: MigrationRecord, duration: Duration, _ db: Database) throws {
        let down = String(decoding: try JSONEncoder().encode(record.down), as: UTF8.self)
        let detail = try record.detail.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try db.execute(
            sql: """
                INSERT INTO tide_migrations
                    (name, phase, checksum, revision, applied_at, duration_ms, down, owner, down_transaction, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                record.name, record.phase.rawValue, record.checksum, record.revision,
                ISO8601DateFormatter().string(from: record.appliedAt), Int(duration / .milliseconds(1)), down,
                record.owner, record.downInTransaction, detail,
            ])
    }

    /// A `MigrationError` for an error of GRDB: busy and locked databases are transient; an interrupted statement
    /// is the phase's deadline.
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
