import Foundation
internal import GRDB

/// A migration target in an SQLite file, through GRDB. `BEGIN IMMEDIATE` is the lock: one writer at a time,
/// others wait (busy timeout) and then see what it wrote.
final class SQLiteMigrationDatabase: MigrationDatabase {
    private let queue: DatabaseQueue

    init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
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
            }
        } catch {
            throw MigrationError("cannot open sqlite:\(path): \(Self.describe(error))")
        }
    }

    func records() async throws -> [MigrationRecord] {
        do {
            return try await queue.read { try Self.records($0) }
        } catch {
            throw MigrationError(Self.describe(error))
        }
    }

    func apply(
        _ statements: [String], record: MigrationRecord, batchSize: Int?,
        due: @Sendable ([MigrationRecord]) -> Bool
    ) async throws -> Bool {
        let start = ContinuousClock.now
        do {
            while true {
                let (ran, changed) = try await queue.writeWithoutTransaction { db -> (Bool, Int) in
                    var ran = false
                    var changed = 0
                    try db.inTransaction(.immediate) {
                        guard due(try Self.records(db)) else { return .rollback }
                        for statement in statements {
                            try db.execute(sql: MigrationDatabases.batched(statement, batchSize))
                            changed += db.changesCount
                        }
                        ran = true
                        if batchSize == nil || changed == 0 {
                            var finished = record
                            finished.durationMilliseconds = Int((ContinuousClock.now - start) / .milliseconds(1))
                            try Self.insert(finished, db)
                        }
                        return .commit
                    }
                    return (ran, changed)
                }
                guard ran else { return false }
                if batchSize == nil || changed == 0 { return true }
            }
        } catch {
            throw MigrationError(Self.describe(error))
        }
    }

    func close() async {
        try? queue.close()
    }

    private static func records(_ db: Database) throws -> [MigrationRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM tide_migrations ORDER BY id").compactMap { row in
            guard let phase = MigrationRecord.Phase(rawValue: row["phase"]) else { return nil }
            let down = (try? JSONDecoder().decode([String].self, from: Data((row["down"] as String).utf8))) ?? []
            return MigrationRecord(
                name: row["name"], phase: phase, checksum: row["checksum"], revision: row["revision"],
                appliedAt: ISO8601DateFormatter().date(from: row["applied_at"]) ?? Date(timeIntervalSince1970: 0),
                durationMilliseconds: row["duration_ms"], down: down)
        }
    }

    private static func insert(_ record: MigrationRecord, _ db: Database) throws {
        let down = String(decoding: try JSONEncoder().encode(record.down), as: UTF8.self)
        try db.execute(
            sql: """
                INSERT INTO tide_migrations (name, phase, checksum, revision, applied_at, duration_ms, down)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                record.name, record.phase.rawValue, record.checksum, record.revision,
                ISO8601DateFormatter().string(from: record.appliedAt), record.durationMilliseconds, down,
            ])
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return error.message ?? "\(error)"
        }
        return "\(error)"
    }
}
