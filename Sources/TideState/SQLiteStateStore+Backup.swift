import Foundation
internal import GRDB
import TideGit
import TideManifest

/// `tide state backup` and `tide state check`.
extension SQLiteStateStore {
    /// Copies the whole state into a new file at `path` with SQLite's online backup: a consistent snapshot (one
    /// read transaction), taken while `tide run` and other processes go on writing. The copy is a single file (no
    /// write-ahead log), checked with `PRAGMA integrity_check` before this returns. Refuses an existing file.
    public func backup(to path: String) async throws -> (pages: Int, bytes: Int) {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw StateError.database(path: path, message: "the backup file exists already; name a new one")
        }
        do {
            return try Self.copy(pool, to: path)
        } catch let error as DatabaseError {
            try? FileManager.default.removeItem(atPath: path)
            throw StateError.database(path: path, message: Self.explain(error))
        }
    }

    private static func copy(_ pool: DatabasePool, to path: String) throws -> (pages: Int, bytes: Int) {
        let copy = try DatabaseQueue(path: path)
        try pool.backup(to: copy)
        let check = try copy.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
        guard check == ["ok"] else {
            try? FileManager.default.removeItem(atPath: path)
            throw StateError.database(path: path, message: "the copy does not pass integrity_check: \(check)")
        }
        let pages = try copy.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
        try copy.close()
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
        return (pages, bytes ?? 0)
    }

    /// What `tide state check` reports: SQLite's integrity check, the schema migrations applied (and whether this
    /// binary knows them all), and what the state holds.
    public struct Check: Sendable, Encodable {
        public var integrity: [String]
        public var schema: [String]
        public var current: Bool
        public var targets: Int
        public var events: Int
        public var deployments: Int
        public var ok: Bool { integrity == ["ok"] && current }
    }

    public func check() async throws -> Check {
        let migrator = Self.migrator
        return try await read { db in
            let applied = try migrator.appliedIdentifiers(db).sorted()
            let known = Set(migrator.migrations)
            return Check(
                integrity: try String.fetchAll(db, sql: "PRAGMA integrity_check"),
                schema: applied.sorted(), current: Set(applied) == known,
                targets: try Int.fetchOne(db, sql: "SELECT count(*) FROM targets") ?? 0,
                events: try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0,
                deployments: try Int.fetchOne(db, sql: "SELECT count(*) FROM deployments") ?? 0)
        }
    }
}
