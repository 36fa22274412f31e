import Foundation
internal import Logging
internal import PostgresNIO

/// A migration target in PostgreSQL, through postgres-nio. Each phase is one transaction that first takes
/// `pg_advisory_xact_lock` on a key of Tide's own, so concurrent Tide processes queue up and the second sees
/// the first one's history row.
final class PostgresMigrationDatabase: MigrationDatabase {
    /// `hashtext('tide_migrations')` would do as well; a constant is easier to find in pg_locks.
    static let lockKey: Int64 = 0x7469_6465_6d69_67  // "tidemig"
    private let connection: PostgresConnection
    private let logger = Logger(label: "tide.migrations")

    private init(connection: PostgresConnection) {
        self.connection = connection
    }

    static func connect(
        host: String, port: Int, user: String, password: String?, database: String
    ) async throws -> PostgresMigrationDatabase {
        let configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: .disable)
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                configuration: configuration, id: 1, logger: Logger(label: "tide.migrations"))
        } catch {
            throw MigrationError("cannot connect to postgres://\(user)@\(host):\(port)/\(database): \(describe(error))")
        }
        let db = PostgresMigrationDatabase(connection: connection)
        do {
            // Under the lock: two processes creating the table at once would collide in the catalog.
            try await db.run("BEGIN")
            try await db.run("SELECT pg_advisory_xact_lock(\(lockKey))")
            try await db.run(
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
                """)
            try await db.run("COMMIT")
        } catch {
            await db.close()
            throw error
        }
        return db
    }

    func records() async throws -> [MigrationRecord] {
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT name, phase, checksum, revision, extract(epoch from applied_at)::float8, duration_ms, down
                    FROM tide_migrations ORDER BY id
                    """), logger: logger
        ).get().rows
        return try rows.compactMap { row in
            let (name, phase, checksum, revision, epoch, duration, down) = try row.decode(
                (String, String, String, String, Double, Int, String).self)
            guard let phase = MigrationRecord.Phase(rawValue: phase) else { return nil }
            return MigrationRecord(
                name: name, phase: phase, checksum: checksum, revision: revision,
                appliedAt: Date(timeIntervalSince1970: epoch), durationMilliseconds: duration,
                down: (try? JSONDecoder().decode([String].self, from: Data(down.utf8))) ?? [])
        }
    }

    func apply(
        _ statements: [String], record: MigrationRecord, batchSize: Int?,
        due: @Sendable ([MigrationRecord]) -> Bool
    ) async throws -> Bool {
        let start = ContinuousClock.now
        while true {
            try await run("BEGIN")
            do {
                try await run("SELECT pg_advisory_xact_lock(\(Self.lockKey))")
                guard due(try await records()) else {
                    try await run("ROLLBACK")
                    return false
                }
                var changed = 0
                for statement in statements {
                    changed += try await run(MigrationDatabases.batched(statement, batchSize))
                }
                let finished = batchSize == nil || changed == 0
                if finished {
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
                    _ = try await connection.query(
                        PostgresQuery(
                            unsafeSQL: """
                                INSERT INTO tide_migrations (name, phase, checksum, revision, applied_at, duration_ms, down)
                                VALUES ($1, $2, $3, $4, to_timestamp($5), $6, $7)
                                """, binds: binds), logger: logger
                    ).get()
                }
                try await run("COMMIT")
                if finished { return true }
            } catch {
                _ = try? await run("ROLLBACK")
                throw error
            }
        }
    }

    func close() async {
        try? await connection.close()
    }

    /// Runs one statement; returns the rows it changed.
    @discardableResult
    private func run(_ sql: String) async throws -> Int {
        do {
            return try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).get().metadata.rows ?? 0
        } catch {
            throw MigrationError(Self.describe(error))
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return message + (error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
            }
            return "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
        }
        if let error = error as? MigrationError { return error.description }
        return "\(error)"
    }
}
