public import Foundation
public import TideManifest

/// One applied (or undone) phase, as the history table in the target database records it.
public struct MigrationRecord: Sendable, Hashable, Codable {
    public enum Phase: String, Sendable, Hashable, Codable {
        case expand, backfill, contract
        /// expand's `down`: the migration was undone before contract.
        case down
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

    public init(
        name: String, phase: Phase, checksum: String, revision: String, appliedAt: Date, durationMilliseconds: Int,
        down: [String] = []
    ) {
        self.name = name
        self.phase = phase
        self.checksum = checksum
        self.revision = revision
        self.appliedAt = appliedAt
        self.durationMilliseconds = durationMilliseconds
        self.down = down
    }
}

/// Where one migration stands in one database, folded from its history rows.
public struct MigrationStatus: Sendable, Hashable {
    public var expand: MigrationRecord?
    public var backfill: MigrationRecord?
    public var contract: MigrationRecord?

    public init() {}

    /// Expanded (or, for a migration without expand, started) and not undone.
    public var isApplied: Bool { expand != nil || backfill != nil || contract != nil }

    public func record(_ phase: MigrationManifest.PhaseName) -> MigrationRecord? {
        switch phase {
        case .expand: expand
        case .backfill: backfill
        case .contract: contract
        }
    }

    /// Every migration's status, from history rows in the order they were written.
    public static func fold(_ records: [MigrationRecord]) -> [String: MigrationStatus] {
        var result: [String: MigrationStatus] = [:]
        for record in records {
            var status = result[record.name] ?? MigrationStatus()
            switch record.phase {
            case .expand: status.expand = record
            case .backfill: status.backfill = record
            case .contract: status.contract = record
            case .down: status = MigrationStatus()
            }
            result[record.name] = status
        }
        return result
    }
}

/// Why a migration phase could not run.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// One environment's database, as a `sql` executor reaches it.
///
/// Every phase runs under the database's migration lock (PostgreSQL: a transaction-level advisory lock; SQLite:
/// `BEGIN IMMEDIATE`), in one transaction with its history row, after checking — with the lock held — that it is
/// still due: two Tide processes on one database apply each phase once.
public protocol MigrationDatabase: Sendable {
    /// The history table's rows, oldest first (the table is created if missing).
    func records() async throws -> [MigrationRecord]

    /// Runs `statements` and writes `record`, in one transaction under the lock, unless `due` says otherwise once
    /// the lock is held (another process did it). With `batchSize`, `{{batch}}` in the statements is replaced by
    /// it and the statements are repeated, one transaction per round, until a round changes no row; the record is
    /// written with the last round. Returns whether it ran.
    func apply(
        _ statements: [String], record: MigrationRecord, batchSize: Int?,
        due: @Sendable ([MigrationRecord]) -> Bool
    ) async throws -> Bool

    func close() async
}

/// Opens the database a `sql` executor names for an environment.
public enum MigrationDatabases {
    public static func open(
        _ executor: ExecutorManifest, environment: String, workingDirectory: String
    ) async throws -> any MigrationDatabase {
        guard let database = executor.database, let url = database.url(for: environment) else {
            throw MigrationError("executor '\(executor.name)' has no database for \(environment)")
        }
        switch url {
        case .sqlite(let path):
            let resolved = path.hasPrefix("/") ? path : (workingDirectory as NSString).appendingPathComponent(path)
            return try SQLiteMigrationDatabase(path: resolved)
        case .postgres(let user, let host, let port, let name):
            let password = try database.password.map { try Self.password(from: $0, workingDirectory: workingDirectory) }
            return try await PostgresMigrationDatabase.connect(
                host: host, port: port, user: user, password: password, database: name)
        }
    }

    static func password(from source: PasswordSource, workingDirectory: String) throws -> String {
        switch source {
        case .environment(let name):
            guard let value = ProcessInfo.processInfo.environment[name] else {
                throw MigrationError("the database password variable \(name) is not set")
            }
            return value
        case .file(let path):
            let resolved = path.hasPrefix("/") ? path : (workingDirectory as NSString).appendingPathComponent(path)
            guard let text = try? String(contentsOfFile: resolved, encoding: .utf8) else {
                throw MigrationError("cannot read the database password file \(resolved)")
            }
            return text.trimmingCharacters(in: .newlines)
        }
    }

    /// `{{batch}}` → the batch size.
    static func batched(_ statement: String, _ size: Int?) -> String {
        guard let size else { return statement }
        return statement.replacingOccurrences(of: "{{batch}}", with: String(size))
    }
}
