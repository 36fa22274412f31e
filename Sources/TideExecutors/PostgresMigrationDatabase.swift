import Foundation
internal import Logging
internal import PostgresNIO
import TideManifest

/// A migration target in PostgreSQL, through postgres-nio. Each phase is one transaction that first takes
/// `pg_advisory_xact_lock` on a key of Tide's own, so concurrent Tide processes queue up and the second sees
/// the first one's history row.
///
/// Nothing waits without bound: the connection has a connect timeout; each phase runs with `statement_timeout`
/// set to what is left of the executor's `timeout`, and with a short `lock_timeout` — a statement that cannot get
/// its table lock gives up quickly instead of queueing the application's queries behind it, and the phase is
/// tried again after a pause (as pgroll does); and a server that stops answering altogether is noticed by the
/// client, which closes the connection at the deadline.
final class PostgresMigrationDatabase: MigrationDatabase {
    /// `hashtext('tide_migrations')` would do as well; a constant is easier to find in pg_locks.
    static let lockKey: Int64 = 0x7469_6465_6d69_67  // "tidemig"
    private let connection: PostgresConnection
    private let limits: MigrationLimits
    private let logger = Logger(label: "tide.migrations")
    /// Set when Tide gave up on the server and closed the connection.
    private let abandoned = Flag()
    /// Set once the history table is known to have every column.
    private let prepared = Flag()

    private init(connection: PostgresConnection, limits: MigrationLimits) {
        self.connection = connection
        self.limits = limits
    }

    deinit {
        // Dropped without close() (a caller's error path): close it, and keep it until it is closed, which
        // postgres-nio insists on.
        guard !connection.isClosed else { return }
        let connection = self.connection
        connection.close().whenComplete { _ in _ = connection }
    }

    /// The TLS `sslmode` asks for: prefer and require encrypt without checking the certificate (as libpq does),
    /// verify-ca checks it against `sslrootcert` (else the system's authorities), verify-full also checks that
    /// it names the host.
    static func tls(
        _ spec: DatabaseURL.PostgresTLS, workingDirectory: String
    ) throws -> PostgresConnection.Configuration.TLS {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch spec.mode {
        case .disable: return .disable
        case .prefer, .require: configuration.certificateVerification = .none
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        if let root = spec.rootCertificate {
            let path = MigrationDatabases.resolve(root, workingDirectory)
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw MigrationError("cannot read sslrootcert \(path)")
            }
            configuration.trustRoots = .file(path)
        }
        do {
            let context = try NIOSSLContext(configuration: configuration)
            return spec.mode == .prefer ? .prefer(context) : .require(context)
        } catch {
            throw MigrationError("cannot set up TLS for sslmode=\(spec.mode.rawValue): \(error)")
        }
    }

    static func connect(
        host: String, port: Int, user: String, password: String?, database: String,
        tls: PostgresConnection.Configuration.TLS, limits: MigrationLimits
    ) async throws -> PostgresMigrationDatabase {
        // The URL as it was written, less the password it cannot hold.
        let place = "postgres://\(user)@\(host):\(port)/\(database)"
        let connection = try await open(
            host: host, port: port, user: user, password: password, database: database, tls: tls,
            timeout: limits.connect, place: place)
        let db = PostgresMigrationDatabase(connection: connection, limits: limits)
        let deadline = ContinuousClock.now + limits.phase
        do {
            // A Tide that stops answering in a transaction (killed, partitioned) must not keep its locks.
            try await db.run(
                "SET idle_in_transaction_session_timeout = \(milliseconds(limits.phase + grace(limits.phase)))",
                until: deadline)
            // A Tide killed in the middle of a statement (a long backfill): the server notices the closed
            // connection within a second and cancels the statement, instead of running it to the end for nobody
            // (PostgreSQL 14 and later; earlier servers do not know the setting).
            _ = try? await db.run("SET client_connection_check_interval = 1000", until: deadline)
        } catch {
            await db.close()
            throw error.prefixed("cannot set up the session in \(place)")
        }
        return db
    }

    /// Connects within `timeout` — TCP, TLS and login together (postgres-nio's connect timeout covers the whole
    /// start-up): a server that accepts the connection and then says nothing does not hold the caller longer.
    private static func open(
        host: String, port: Int, user: String, password: String?, database: String,
        tls: PostgresConnection.Configuration.TLS, timeout: Duration, place: String
    ) async throws -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .milliseconds(Int64(milliseconds(timeout)))
        configuration.options.additionalStartupParameters = [("application_name", "tide")]
        do {
            return try await PostgresConnection.connect(
                configuration: configuration, id: 1, logger: Logger(label: "tide.migrations"))
        } catch {
            var error = classify(error)
            if error.description.contains("connectTimeout") {
                error.description = "no answer within \(MigrationLimits.format(timeout)) (the connect timeout)"
            }
            throw error.prefixed("cannot connect to \(place)")
        }
    }

    func records() async throws -> [MigrationRecord] {
        try await records(until: .now + limits.phase)
    }

    /// The history table's columns in the current schema; empty when there is no table yet (reading never creates
    /// it: `tide status` on a database Tide never wrote to leaves it as it is).
    private func columns(until deadline: ContinuousClock.Instant) async throws -> Set<String> {
        let rows = try await query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT column_name::text FROM information_schema.columns
                    WHERE table_schema = current_schema() AND table_name = 'tide_migrations'
                    """), until: deadline
        ).rows
        var names: Set<String> = []
        for row in rows {
            names.insert(try row.decode(String.self))
        }
        return names
    }

    /// Creates the history table (or adds the columns later versions of Tide added), under the lock: two
    /// processes creating it at once would collide in the catalog. Only before a write.
    private func prepareTable(until deadline: ContinuousClock.Instant) async throws {
        if prepared.isSet { return }
        let have = try await columns(until: deadline)
        if !have.isEmpty && Self.columns.allSatisfy({ have.contains($0) }) {
            prepared.set()
            return
        }
        try await run("BEGIN", until: deadline)
        do {
            try await run("SET LOCAL statement_timeout = \(try remaining(deadline))", until: deadline)
            try await run("SELECT pg_advisory_xact_lock(\(Self.lockKey))", until: deadline)
            try await run(
                """
                CREATE TABLE IF NOT EXISTS tide_migrations (
                    id BIGSERIAL PRIMARY KEY,
                    name TEXT NOT NULL,
                    phase TEXT NOT NULL,
                    checksum TEXT NOT NULL,
                    revision TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL,
                    duration_ms INTEGER NOT NULL,
                    down TEXT NOT NULL DEFAULT '[]'
                )
                """, until: deadline)
            // Columns later versions added: tables made before them get them (old rows read as NULL).
            try await run("ALTER TABLE tide_migrations ADD COLUMN IF NOT EXISTS owner TEXT", until: deadline)
            try await run(
                "ALTER TABLE tide_migrations ADD COLUMN IF NOT EXISTS down_transaction BOOLEAN NOT NULL DEFAULT true",
                until: deadline)
            try await run("ALTER TABLE tide_migrations ADD COLUMN IF NOT EXISTS detail TEXT", until: deadline)
            try await run("COMMIT", until: deadline)
        } catch {
            _ = try? await run("ROLLBACK", until: .now + .seconds(5))
            throw Self.classify(error).prefixed("cannot set up the migration history table")
        }
        prepared.set()
    }

    /// Every column the history table has today.
    static let columns = [
        "name", "phase", "checksum", "revision", "applied_at", "duration_ms", "down", "owner", "down_transaction",
        "detail",
    ]

    private func records(until deadline: ContinuousClock.Instant) async throws -> [MigrationRecord] {
        let have = try await columns(until: deadline)
        guard !have.isEmpty else { return [] }
        // A table from an older Tide lacks the newer columns: they read as NULL.
        func column(_ name: String, _ type: String) -> String { have.contains(name) ? name : "NULL::\(type)" }
        let rows = try await query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT name, phase, checksum, revision, extract(epoch from applied_at)::float8, duration_ms, down,
                           \(column("owner", "text")), \(column("down_transaction", "boolean")),
                           \(column("detail", "text"))
                    FROM tide_migrations ORDER BY id
                    """), until: deadline
        ).rows
        do {
            var records: [MigrationRecord] = []
            for row in rows {
                let (name, phase, checksum, revision, epoch, duration, down, owner, downInTransaction, detail) =
                    try row.decode(
                        (String, String, String, String, Double, Int, String, String?, Bool?, String?).self)
                guard let phase = MigrationRecord.Phase(rawValue: phase) else { continue }
                var record = MigrationRecord(
                    name: name, phase: phase, checksum: checksum, revision: revision,
                    appliedAt: Date(timeIntervalSince1970: epoch), durationMilliseconds: duration,
                    down: (try? JSONDecoder().decode([String].self, from: Data(down.utf8))) ?? [], owner: owner)
                record.downInTransaction = downInTransaction ?? true
                record.detail = detail.flatMap {
                    try? JSONDecoder().decode(MigrationRecord.Detail.self, from: Data($0.utf8))
                }
                records.append(record)
            }
            return records
        } catch let error as MigrationError {
            throw error
        } catch {
            throw MigrationError("cannot read tide_migrations: \(Self.describe(error))")
        }
    }

    func apply(
        _ run: MigrationRun, record: MigrationRecord, due: @Sendable ([MigrationRecord]) -> Bool
    ) async throws -> Bool {
        let start = ContinuousClock.now
        let deadline = start + limits.phase
        try await prepareTable(until: deadline)
        guard run.transaction else {
            return try await applyOneByOne(run, record: record, due: due, start: start, deadline: deadline)
        }
        return try await run.inRounds(
            {
                try await withLockRetries(deadline: deadline) {
                    try await self.transaction(run, record: record, due: due, start: start, deadline: deadline)
                }
            }, classify: Self.classify)
    }

    /// One transaction: the lock, the check that the phase is still due, the statements, and — when it is the
    /// last round — the history row.
    private func transaction(
        _ run: MigrationRun, record: MigrationRecord, due: @Sendable ([MigrationRecord]) -> Bool,
        start: ContinuousClock.Instant, deadline: ContinuousClock.Instant
    ) async throws -> MigrationRun.RoundOutcome {
        try await self.run("BEGIN", until: deadline)
        do {
            // Waiting for another Tide process's phase does not hold up the application: only the time left.
            try await self.run("SET LOCAL statement_timeout = \(try remaining(deadline))", until: deadline)
            try await self.run("SELECT pg_advisory_xact_lock(\(Self.lockKey))", until: deadline)
            guard due(try await records(until: deadline)) else {
                try await self.run("ROLLBACK", until: deadline)
                return .notDue
            }
            try await self.run("SET LOCAL lock_timeout = \(Self.milliseconds(limits.lock))", until: deadline)
            var changed = 0
            for statement in run.statements {
                try await self.run("SET LOCAL statement_timeout = \(try remaining(deadline))", until: deadline)
                let result = try await query(
                    PostgresQuery(unsafeSQL: MigrationDatabases.batched(statement, run.batchSize)), until: deadline)
                changed += Self.changedRows(result.metadata)
            }
            let finished = run.batchSize == nil || changed == 0
            if finished { try await insert(record, start: start, deadline: deadline) }
            try await self.run("COMMIT", until: deadline)
            return finished ? .finished : .changed(changed)
        } catch {
            // Bounded by its own short deadline: if the server stopped answering, the connection is closed anyway.
            _ = try? await self.run("ROLLBACK", until: .now + .seconds(5))
            throw error
        }
    }

    /// `transaction: false`: the statements one by one, outside a transaction, under the session-level advisory
    /// lock (taken and released on this connection; the server releases it if the connection goes); then the
    /// history row. A progress row (`partial`) goes in before the first statement and after each one, so a phase
    /// that fails or is killed half way is known as half done — never as "as before" — and goes on from the next
    /// statement when it runs again. Each statement waits at most `lock` for its table locks and is tried again
    /// (as in a transaction), except `… CONCURRENTLY`, which waits for older transactions by design without
    /// blocking the application (cutting it short would leave an invalid index).
    private func applyOneByOne(
        _ run: MigrationRun, record: MigrationRecord, due: @Sendable ([MigrationRecord]) -> Bool,
        start: ContinuousClock.Instant, deadline: ContinuousClock.Instant
    ) async throws -> Bool {
        var done = run.resumeFrom
        var locked = false
        var started = false
        do {
            try await self.run("SET statement_timeout = \(try remaining(deadline))", until: deadline)
            try await self.run("SELECT pg_advisory_lock(\(Self.lockKey))", until: deadline)
            locked = true
            guard due(try await records(until: deadline)) else {
                try await self.run("SELECT pg_advisory_unlock(\(Self.lockKey))", until: deadline)
                try await self.run("RESET statement_timeout", until: deadline)
                return false
            }
            try await insert(run.progress(record, done: done), start: start, deadline: deadline)
            started = true
            for statement in run.statements.dropFirst(done) {
                let concurrently = Self.isConcurrent(statement)
                try await withLockRetries(deadline: deadline) {
                    try await self.run("SET statement_timeout = \(try self.remaining(deadline))", until: deadline)
                    try await self.run(
                        "SET lock_timeout = \(concurrently ? 0 : Self.milliseconds(self.limits.lock))",
                        until: deadline)
                    try await self.run(statement, until: deadline)
                }
                done += 1
                if done < run.statements.count {
                    try await insert(run.progress(record, done: done), start: start, deadline: deadline)
                }
            }
            try await self.run("RESET statement_timeout", until: deadline)
            try await self.run("RESET lock_timeout", until: deadline)
            try await dropInvalidIndexes(Self.concurrentIndexes(in: run.statements), deadline: deadline)
            try await self.run("BEGIN", until: deadline)
            try await insert(record, start: start, deadline: deadline)
            try await self.run("COMMIT", until: deadline)
            try await self.run("SELECT pg_advisory_unlock(\(Self.lockKey))", until: deadline)
            return true
        } catch {
            let error = Self.classify(error)
            let cleanup = ContinuousClock.now + .seconds(5)
            _ = try? await self.run("ROLLBACK", until: cleanup)
            _ = try? await self.run("RESET lock_timeout", until: cleanup)
            _ = try? await self.run("RESET statement_timeout", until: cleanup)
            if started {
                // Where it stopped, and why (when the server still answers: else the last progress row says it).
                _ = try? await insert(
                    run.progress(record, done: done, failure: error), start: start, deadline: cleanup)
            }
            if locked {
                _ = try? await self.run("SELECT pg_advisory_unlock(\(Self.lockKey))", until: cleanup)
            }
            throw started ? error.keeping(statements: done, of: run.statements.count) : error
        }
    }

    /// `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX … CONCURRENTLY`.
    static func isConcurrent(_ statement: String) -> Bool {
        statement.split(whereSeparator: { $0.isWhitespace }).prefix(4).contains { $0.uppercased() == "CONCURRENTLY" }
    }

    /// The indexes `CREATE INDEX CONCURRENTLY` statements name.
    static func concurrentIndexes(in statements: [String]) -> [String] {
        statements.compactMap { statement in
            let words = statement.split(whereSeparator: { $0.isWhitespace }).map(String.init)
            guard let create = words.firstIndex(where: { $0.uppercased() == "CREATE" }) else { return nil }
            var rest = Array(words[(create + 1)...])
            if rest.first?.uppercased() == "UNIQUE" { rest.removeFirst() }
            guard rest.count > 2, rest[0].uppercased() == "INDEX", rest[1].uppercased() == "CONCURRENTLY" else {
                return nil
            }
            rest.removeFirst(2)
            if rest.count > 3, rest[0].uppercased() == "IF", rest[1].uppercased() == "NOT",
                rest[2].uppercased() == "EXISTS"
            {
                rest.removeFirst(3)
            }
            guard let name = rest.first, name.uppercased() != "ON" else { return nil }
            return name.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
    }

    /// A `CREATE INDEX CONCURRENTLY` cut short (a timeout, a conflicting transaction) leaves an invalid index that
    /// `IF NOT EXISTS` then skips, so the phase would be recorded over an index that is never used: such an index
    /// is dropped and the phase fails as transient, to build it again at the next try.
    private func dropInvalidIndexes(_ names: [String], deadline: ContinuousClock.Instant) async throws {
        for name in names {
            let literal = "'" + name.replacingOccurrences(of: "'", with: "''") + "'"
            do {
                try await self.run(
                    """
                    DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                    WHERE NOT i.indisvalid AND c.relname = \(literal)) THEN RAISE EXCEPTION 'invalid index'; END IF; END $$
                    """, until: deadline)
            } catch  where "\(error)".contains("invalid index") {
                let quoted = "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                _ = try? await self.run("DROP INDEX CONCURRENTLY IF EXISTS \(quoted)", until: deadline)
                throw MigrationError(
                    "index \(name) was left invalid by a CREATE INDEX CONCURRENTLY that did not finish; it was dropped "
                        + "and is built again at the next try", kind: .transient)
            }
        }
    }

    /// Runs `body` again after a pause when it did not get a lock in time (55P03) or lost a serialization race or
    /// a deadlock (40001, 40P01): those leave nothing behind and usually pass a moment later.
    private func withLockRetries<T: Sendable>(
        deadline: ContinuousClock.Instant, _ body: () async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let error as MigrationError {
                guard let state = error.sqlState, ["55P03", "40001", "40P01"].contains(state) else { throw error }
                let pause = limits.backoff(attempt)
                guard attempt < limits.lockAttempts, ContinuousClock.now + pause < deadline else {
                    var error = error
                    error.description +=
                        " (tried \(attempt) time\(attempt == 1 ? "" : "s"), each waiting at most "
                        + "\(MigrationLimits.format(limits.lock)) for locks)"
                    throw error
                }
                try await Monotonic.sleep(
                    seconds: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18)
                attempt += 1
            }
        }
    }

    private func insert(
        _ record: MigrationRecord, start: ContinuousClock.Instant, deadline: ContinuousClock.Instant
    ) async throws {
        var done = record
        done.durationMilliseconds = Int((ContinuousClock.now - start) / .milliseconds(1))
        var binds = PostgresBindings()
        binds.append(done.name)
        binds.append(done.phase.rawValue)
        binds.append(done.checksum)
        binds.append(done.revision)
        binds.append(done.appliedAt.timeIntervalSince1970)
        binds.append(done.durationMilliseconds)
        binds.append(String(decoding: try JSONEncoder().encode(done.down), as: UTF8.self))
        if let owner = done.owner { binds.append(owner) } else { binds.appendNull() }
        binds.append(done.downInTransaction)
        if let detail = done.detail {
            binds.append(String(decoding: try JSONEncoder().encode(detail), as: UTF8.self))
        } else {
            binds.appendNull()
        }
        _ = try await query(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO tide_migrations
                        (name, phase, checksum, revision, applied_at, duration_ms, down, owner, down_transaction, detail)
                    VALUES ($1, $2, $3, $4, to_timestamp($5), $6, $7, $8, $9, $10)
                    """, binds: binds), until: deadline)
    }

    func close() async {
        try? await connection.close()
    }

    /// Runs one statement.
    private func run(_ sql: String, until deadline: ContinuousClock.Instant) async throws {
        _ = try await query(PostgresQuery(unsafeSQL: sql), until: deadline)
    }

    /// Runs one query. The server cancels it at the deadline (`statement_timeout`, set by the caller); if the
    /// server does not answer even a little after that, it is not going to: the connection is closed.
    private func query(_ query: PostgresQuery, until deadline: ContinuousClock.Instant) async throws
        -> PostgresQueryResult
    {
        // postgres-nio never answers a query written to a closed connection: say so instead of waiting.
        guard !connection.isClosed && !abandoned.isSet else {
            throw MigrationError(
                "the connection to the database is closed (the server went away, or did not answer in time)",
                kind: .transient)
        }
        let limit = limits.phase
        let abandoned = self.abandoned
        do {
            return try await Self.query(
                query, on: connection, logger: logger, within: deadline + Self.grace(limit) - .now,
                onTimeout: { abandoned.set() },
                timedOut: {
                    MigrationError(
                        "the database did not answer within \(MigrationLimits.format(limit)) (the sql executor's "
                            + "timeout); tide closed the connection", kind: .transient)
                })
        } catch {
            throw Self.classify(error)
        }
    }

    /// Runs `query` on `connection`; when no answer has come within `limit`, closes the connection and fails with
    /// `timedOut()`. The timer runs on the connection's event loop, where the answer arrives too, so which came
    /// first is decided there: a process too busy to resume its tasks at once cannot turn an answer that came in
    /// time into a timeout.
    static func query(
        _ query: PostgresQuery, on connection: PostgresConnection, logger: Logger, within limit: Duration,
        onTimeout: @escaping @Sendable () -> Void = {}, timedOut: @escaping @Sendable () -> MigrationError
    ) async throws -> PostgresQueryResult {
        let eventLoop = connection.eventLoop
        let answer = eventLoop.makePromise(of: PostgresQueryResult.self)
        let settled = Flag()
        let timer = eventLoop.scheduleTask(in: .nanoseconds(Int64(max(limit, .zero) / .nanoseconds(1)))) {
            guard settled.setOnce() else { return }
            onTimeout()
            answer.fail(timedOut())
            let _: EventLoopFuture<Void> = connection.close()
        }
        connection.query(query, logger: logger).whenComplete { result in
            guard settled.setOnce() else { return }
            timer.cancel()
            answer.completeWith(result)
        }
        return try await answer.futureResult.get()
    }

    /// What is left of the phase, in milliseconds for `statement_timeout`; none left is a transient error.
    private func remaining(_ deadline: ContinuousClock.Instant) throws -> Int {
        try Self.remaining(deadline, limits)
    }

    private static func remaining(_ deadline: ContinuousClock.Instant, _ limits: MigrationLimits) throws -> Int {
        let left = milliseconds(deadline - .now)
        guard left > 0 else { throw MigrationError.deadline("the phase", after: limits.phase) }
        return left
    }

    /// How long after the server should have cancelled a statement the client stops waiting for its answer.
    private static func grace(_ limit: Duration) -> Duration {
        min(max(limit / 10, .milliseconds(500)), .seconds(5))
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        Int(duration / .milliseconds(1))
    }

    /// Rows changed by a data-modifying statement, read from its command tag: `SELECT pg_sleep(1)` or a `SELECT`
    /// returning rows changes none.
    static func changedRows(_ metadata: PostgresQueryMetadata) -> Int {
        switch metadata.command {
        case "INSERT", "UPDATE", "DELETE": return metadata.rows ?? 0
        default:
            // postgres-nio passes tags it does not know through whole: "MERGE 12".
            let parts = metadata.command.split(separator: " ")
            guard parts.count == 2, parts[0] == "MERGE" else { return 0 }
            return Int(parts[1]) ?? 0
        }
    }
}

fileprivate extension Error {
    /// A `MigrationError` whose description starts with `context`.
    func prefixed(_ context: String) -> MigrationError {
        var error = PostgresMigrationDatabase.classify(self)
        error.description = "\(context): \(error.description)"
        return error
    }
}
