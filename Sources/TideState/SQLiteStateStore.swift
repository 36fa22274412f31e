import Foundation
internal import GRDB
import Synchronization
import TideGit
public import TideManifest

/// Live state and the event log in one SQLite file (WAL mode), with its own schema migrations.
///
/// SQLite serialises writers itself; on top of that a reconcile pass holds an advisory `flock` on the state file
/// itself (see `FileLock`), so two `tide` processes never drive the same targets at once, whatever path they reach
/// the file by. The kernel drops the lock when a process dies, so a killed reconciler never leaves the state
/// locked. The file is opened by its resolved path, and a file with several hard links is refused: SQLite names
/// its write-ahead log after the path, so two names would mean two logs for one database.
public final class SQLiteStateStore: StateStore, OperatorChannel {
    public let path: String
    let pool: DatabasePool
    /// The device and inode of the file opened (see `checkNotReplaced`).
    let opened: (device: UInt64, inode: UInt64)?
    /// Live targets as last read or written by this process, with the `targets_version` they were read at.
    let liveCache = Mutex<LiveTargetCache?>(nil)
    public var location: String { "sqlite:" + path }

    public init(path given: String) throws {
        let directory = (given as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let path = Paths.resolved(given)
        self.path = path
        try FileLock.checkSingleName(path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(15)
        configuration.label = "tide-state"
        configuration.prepareDatabase { db in
            // Memory-mapped reads: scans of large indexes skip a read() per page.
            try db.execute(sql: "PRAGMA mmap_size = 268435456")
            // WAL with synchronous=NORMAL: a commit is safe from a killed or crashed process (the write is in the
            // WAL before the call returns) without an fsync per step; only a power cut can lose the newest
            // commits, never consistency, and a step redone after one carries the same idempotency key.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            // Two processes opening a new state file at once would both switch it to WAL and create the schema:
            // opening and migrating run under a lock of their own (not the reconcile lock, which a pass holds for
            // its whole length).
            let migrator = Self.migrator
            pool = try FileLock.withBlockingLock(path: Paths.resolved(path) + ".migrate.lock") {
                // Under the lock: a file another process is creating right now is complete by the time we get it.
                if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber,
                    size.intValue == 0
                {
                    throw StateError.empty(path: path)
                }
                let pool = try DatabasePool(path: path, configuration: configuration)
                if try pool.read({ try migrator.hasBeenSuperseded($0) }) { throw StateError.newerSchema(path: path) }
                try migrator.migrate(pool)
                return pool
            }
        } catch let error as StateError {
            throw error
        } catch {
            throw StateError.database(path: path, message: "\(error)")
        }
        opened = Self.identity(of: path)
    }

    public func checkNotReplaced() throws {
        guard let opened else { return }
        let now = Self.identity(of: path)
        guard let now, now == opened else { throw StateError.replaced(path: path) }
    }

    private static func identity(of path: String) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE targets (
                        service TEXT NOT NULL,
                        environment TEXT NOT NULL,
                        executor TEXT NOT NULL,
                        phase TEXT NOT NULL,
                        version TEXT,
                        config_digest TEXT,
                        revision TEXT,
                        rollout TEXT,
                        failed TEXT,
                        updated_at REAL NOT NULL,
                        PRIMARY KEY (service, environment)
                    );
                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        time REAL NOT NULL,
                        kind TEXT NOT NULL,
                        service TEXT,
                        environment TEXT,
                        revision TEXT,
                        version TEXT,
                        previous_version TEXT,
                        classification TEXT,
                        message TEXT NOT NULL,
                        details TEXT
                    );
                    CREATE INDEX events_by_target ON events (service, environment, id);
                    CREATE INDEX events_by_kind ON events (kind, time);
                    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
                        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
                    CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
                        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
                    CREATE TABLE actions (
                        id TEXT PRIMARY KEY,
                        service TEXT NOT NULL,
                        environment TEXT NOT NULL,
                        action TEXT NOT NULL,
                        status TEXT NOT NULL,
                        started_at REAL NOT NULL,
                        finished_at REAL,
                        message TEXT
                    );
                    CREATE TABLE repository_status (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        body TEXT NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v2-deployments") { db in
            try db.execute(
                sql: """
                    CREATE TABLE deployments (
                        id TEXT PRIMARY KEY,
                        service TEXT NOT NULL,
                        environment TEXT NOT NULL,
                        production INTEGER NOT NULL,
                        revision TEXT NOT NULL,
                        version TEXT NOT NULL,
                        previous_version TEXT,
                        classification TEXT NOT NULL,
                        unplanned INTEGER NOT NULL,
                        started_at REAL NOT NULL,
                        finished_at REAL NOT NULL,
                        succeeded INTEGER NOT NULL,
                        failed INTEGER NOT NULL DEFAULT 0,
                        failure_reason TEXT,
                        failed_at REAL,
                        recovered_at REAL
                    );
                    -- Covering indexes: every DORA count is an index-only range scan.
                    CREATE INDEX deployments_production ON deployments
                        (production, finished_at, succeeded, failed, unplanned);
                    CREATE INDEX deployments_environment ON deployments
                        (environment, finished_at, succeeded, failed, unplanned);
                    CREATE INDEX deployments_service ON deployments
                        (service, finished_at, environment, production, succeeded, failed, unplanned);
                    CREATE TABLE deployment_changes (
                        deployment_id TEXT NOT NULL REFERENCES deployments (id),
                        commit_id TEXT NOT NULL,
                        committed_at REAL NOT NULL,
                        service TEXT NOT NULL,
                        environment TEXT NOT NULL,
                        production INTEGER NOT NULL,
                        finished_at REAL NOT NULL,
                        lead_seconds REAL NOT NULL,
                        PRIMARY KEY (deployment_id, commit_id)
                    );
                    CREATE INDEX changes_production ON deployment_changes (production, finished_at, lead_seconds);
                    CREATE INDEX changes_environment ON deployment_changes (environment, finished_at, lead_seconds);
                    CREATE INDEX changes_service ON deployment_changes
                        (service, finished_at, environment, production, lead_seconds);
                    CREATE INDEX changes_commit ON deployment_changes (commit_id, service, environment);
                    -- Failed deployments are few: partial indexes make recovery times a short scan.
                    CREATE INDEX deployments_failed_production ON deployments
                        (production, finished_at, recovered_at, failed_at, service) WHERE failed = 1;
                    CREATE INDEX deployments_failed_environment ON deployments
                        (environment, finished_at, recovered_at, failed_at, service) WHERE failed = 1;
                    -- One row per UTC day and target, kept up to date with every deployment written: counts over
                    -- whole days, and the day's lead times packed as little-endian float64s, so a summary over a
                    -- million deployments reads a few thousand rows.
                    CREATE TABLE deployment_days (
                        day INTEGER NOT NULL,
                        service TEXT NOT NULL,
                        environment TEXT NOT NULL,
                        production INTEGER NOT NULL,
                        total INTEGER NOT NULL,
                        succeeded INTEGER NOT NULL,
                        failed INTEGER NOT NULL,
                        unplanned INTEGER NOT NULL,
                        leads BLOB NOT NULL,
                        PRIMARY KEY (day, service, environment)
                    );
                    CREATE INDEX deployment_days_production ON deployment_days (production, day);
                    CREATE INDEX deployment_days_environment ON deployment_days (environment, day);
                    CREATE INDEX deployment_days_service ON deployment_days (service, day);
                    """)
        }
        migrator.registerMigration("v3-gates") { db in
            try db.execute(sql: "ALTER TABLE targets ADD COLUMN waiting TEXT")
            try db.execute(sql: "ALTER TABLE targets ADD COLUMN waiting_on TEXT")
        }
        migrator.registerMigration("v4-migrations") { db in
            try db.execute(sql: "ALTER TABLE targets ADD COLUMN migrations TEXT")
            try db.execute(sql: "ALTER TABLE targets ADD COLUMN migrated_at REAL")
        }
        migrator.registerMigration("v5-migration-use") { db in
            try db.execute(sql: "ALTER TABLE targets ADD COLUMN migration_use TEXT")
        }
        migrator.registerMigration("v6-install") { db in
            try db.execute(sql: "CREATE TABLE install (id TEXT NOT NULL)")
            try db.execute(sql: "INSERT INTO install (id) VALUES (?)", arguments: [UUID().uuidString.lowercased()])
        }
        migrator.registerMigration("v7-executor-health") { db in
            try db.execute(sql: "CREATE TABLE executor_health (executor TEXT PRIMARY KEY, body TEXT NOT NULL)")
        }
        migrator.registerMigration("v8-source-status") { db in
            try db.execute(
                sql: "CREATE TABLE source_status (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)")
        }
        migrator.registerMigration("v9-open-actions") { db in
            try db.execute(sql: "CREATE INDEX actions_open ON actions (id) WHERE status = 'started'")
        }
        migrator.registerMigration("v10-release") { db in
            try db.execute(sql: "ALTER TABLE targets ADD COLUMN release TEXT")
        }
        migrator.registerMigration("v11-operators") { db in
            try db.execute(
                sql: """
                    CREATE TABLE services (id TEXT PRIMARY KEY, heartbeat_at REAL NOT NULL, body TEXT NOT NULL);
                    CREATE TABLE operator_requests (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        status TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        body TEXT NOT NULL
                    );
                    CREATE INDEX operator_requests_pending ON operator_requests (id) WHERE status = 'pending';
                    CREATE TABLE suspensions (
                        service TEXT NOT NULL,
                        environment TEXT NOT NULL,
                        body TEXT NOT NULL,
                        PRIMARY KEY (service, environment)
                    );
                    """)
        }
        migrator.registerMigration("v12-kept-candidate") { db in
            try db.execute(sql: "ALTER TABLE targets ADD COLUMN kept_candidate TEXT")
        }
        // Wait reasons as JSON: the comma-joined names become a list, and an error (before: only a prefix of the
        // `waiting` sentence) is a reason of its own.
        migrator.registerMigration("v13-wait-reasons") { db in
            let rows = try Row.fetchAll(db, sql: "SELECT service, environment, waiting, waiting_on FROM targets")
            for row in rows {
                var reasons = WaitReason.column(row["waiting_on"] as String?)
                if let waiting = row["waiting"] as String?, waiting.hasPrefix("error: "),
                    !reasons.contains(where: \.isError)
                {
                    reasons.append(.error(String(waiting.dropFirst("error: ".count))))
                }
                try db.execute(
                    sql: "UPDATE targets SET waiting_on = ? WHERE service = ? AND environment = ?",
                    arguments: [try WaitReason.column(reasons), row["service"] as String, row["environment"] as String])
            }
        }
        // Every change to `targets`, by any process, moves a counter: a long-running reconciler keeps live state in
        // memory and re-reads it only when the counter moved under it (see `LiveTargetCache`).
        migrator.registerMigration("v14-targets-version") { db in
            try db.execute(
                sql: """
                    CREATE TABLE targets_version (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
                    INSERT INTO targets_version (id, n) VALUES (1, 0);
                    CREATE TRIGGER targets_inserted AFTER INSERT ON targets
                        BEGIN UPDATE targets_version SET n = n + 1 WHERE id = 1; END;
                    CREATE TRIGGER targets_updated AFTER UPDATE ON targets
                        BEGIN UPDATE targets_version SET n = n + 1 WHERE id = 1; END;
                    CREATE TRIGGER targets_deleted AFTER DELETE ON targets
                        BEGIN UPDATE targets_version SET n = n + 1 WHERE id = 1; END;
                    """)
        }
        return migrator
    }

    // MARK: - Reads

    public func installID() async throws -> String {
        try await read { db in try String.fetchOne(db, sql: "SELECT id FROM install LIMIT 1") ?? "" }
    }

    public func events(_ query: EventQuery) async throws -> [Event] {
        var clauses: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if let service = query.service {
            clauses.append("service = ?")
            arguments.append(service)
        }
        if let environment = query.environment {
            clauses.append("environment = ?")
            arguments.append(environment)
        }
        if let kinds = query.kinds {
            clauses.append("kind IN (\(kinds.map { _ in "?" }.joined(separator: ",")))")
            arguments += kinds.map(\.rawValue)
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let sql = "SELECT * FROM events \(filter) ORDER BY id DESC LIMIT \(max(0, query.limit))"
        let bound = StatementArguments(arguments)
        return try await read { db in
            try Row.fetchAll(db, sql: sql, arguments: bound).map(Self.event)
        }
    }

    public func events(after id: Int64, kinds: [Event.Kind], limit: Int) async throws -> [Event] {
        let marks = kinds.map { _ in "?" }.joined(separator: ",")
        let sql = "SELECT * FROM events WHERE id > ? AND kind IN (\(marks)) ORDER BY id LIMIT \(max(0, limit))"
        var values: [(any DatabaseValueConvertible)?] = [id]
        values += kinds.map(\.rawValue)
        let arguments = StatementArguments(values)
        return try await read { db in try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.event) }
    }

    public func lastEventID() async throws -> Int64 {
        try await read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM events") ?? 0 }
    }

    public func repositoryStatus() async throws -> RepositoryStatus {
        try await read { db in
            guard let body = try String.fetchOne(db, sql: "SELECT body FROM repository_status WHERE id = 1") else {
                return RepositoryStatus()
            }
            return try Self.decode(RepositoryStatus.self, body)
        }
    }

    public func sourceStatus() async throws -> SourceStatus? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT body FROM source_status WHERE id = 1").map {
                try Self.decode(SourceStatus.self, $0)
            }
        }
    }

    public func suspensions() async throws -> [Suspension] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT body FROM suspensions ORDER BY service, environment").map {
                try Self.decode(Suspension.self, $0)
            }
        }
    }

    public func executorHealth() async throws -> [ExecutorHealth] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT body FROM executor_health ORDER BY executor").map {
                try Self.decode(ExecutorHealth.self, $0)
            }
        }
    }

    public func action(_ id: String) async throws -> ActionRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM actions WHERE id = ?", arguments: [id]).map(Self.actionRecord)
        }
    }

    public func openActions() async throws -> [ActionRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM actions WHERE status = 'started' ORDER BY id")
                .map(Self.actionRecord)
        }
    }

    private static func actionRecord(_ row: Row) -> ActionRecord {
        ActionRecord(
            id: row["id"], target: TargetID(service: row["service"], environment: row["environment"]),
            action: row["action"], status: ActionRecord.Status(rawValue: row["status"]) ?? .failed,
            startedAt: Date(timeIntervalSince1970: row["started_at"]),
            finishedAt: (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
            message: row["message"])
    }

    // MARK: - Writes

    public func apply(_ write: StateWrite) async throws {
        let written = try await writing { db -> LiveTargetCache.Written in
            let before = write.targets.isEmpty && write.removedTargets.isEmpty ? nil : try Self.targetsVersion(db)
            try Self.apply(write, in: db)
            guard let before else { return .none }
            return .targets(
                before: before, after: try Self.targetsVersion(db),
                ids: write.removedTargets.isEmpty ? write.targets.map(\.id) : nil)
        }
        liveCache.withLock { $0.follow(written) }
    }

    private static func apply(_ write: StateWrite, in db: Database) throws {
        // Cached statements: a rollout step writes a few rows, and compiling (and authorising) the statements
        // again for each one cost more than the writes.
        do {
            for target in write.targets {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO targets (service, environment, executor, phase, version, config_digest, revision,
                                             rollout, failed, updated_at, waiting, waiting_on, migrations,
                                             migrated_at, migration_use, release, kept_candidate)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (service, environment) DO UPDATE SET
                            executor = excluded.executor, phase = excluded.phase, version = excluded.version,
                            config_digest = excluded.config_digest, revision = excluded.revision,
                            rollout = excluded.rollout, failed = excluded.failed, updated_at = excluded.updated_at,
                            waiting = excluded.waiting, waiting_on = excluded.waiting_on,
                            migrations = excluded.migrations, migrated_at = excluded.migrated_at,
                            migration_use = excluded.migration_use, release = excluded.release,
                            kept_candidate = excluded.kept_candidate
                        """
                ).execute(
                    arguments: [
                        target.id.service, target.id.environment, target.executor, target.phase.rawValue,
                        target.version, target.configDigest, target.revision?.hex,
                        try target.rollout.map(Self.encode), try target.failed.map(Self.encode),
                        target.updatedAt.timeIntervalSince1970, target.waiting,
                        try WaitReason.column(target.waitingOn),
                        target.migrations.isEmpty ? nil : target.migrations.joined(separator: ","),
                        target.migratedAt?.timeIntervalSince1970,
                        target.migrationUse.isEmpty ? nil : try Self.encode(target.migrationUse),
                        try target.release.map(Self.encode), try target.keptCandidate.map(Self.encode),
                    ])
            }
            for health in write.executorHealth {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO executor_health (executor, body) VALUES (?, ?)
                        ON CONFLICT (executor) DO UPDATE SET body = excluded.body
                        """
                ).execute(arguments: [health.executor, try Self.encode(health)])
            }
            for id in write.removedTargets {
                try db.cachedStatement(
                    sql: "DELETE FROM targets WHERE service = ? AND environment = ?"
                ).execute(
                    arguments: [id.service, id.environment])
            }
            for event in write.events {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO events (time, kind, service, environment, revision, version, previous_version,
                                            classification, message, details)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(
                    arguments: [
                        event.time.timeIntervalSince1970, event.kind.rawValue, event.target?.service,
                        event.target?.environment, event.revision?.hex, event.version, event.previousVersion,
                        event.classification?.rawValue, event.message, event.details?.canonicalJSON,
                    ])
            }
            for action in write.actions {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO actions (id, service, environment, action, status, started_at, finished_at, message)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at,
                            message = excluded.message
                        """
                ).execute(
                    arguments: [
                        action.id, action.target.service, action.target.environment, action.action,
                        action.status.rawValue, action.startedAt.timeIntervalSince1970,
                        action.finishedAt?.timeIntervalSince1970, action.message,
                    ])
            }
            for deployment in write.deployments {
                try Self.upsert(deployment, in: db)
            }
            if let status = write.repositoryStatus {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO repository_status (id, body) VALUES (1, ?)
                        ON CONFLICT (id) DO UPDATE SET body = excluded.body
                        """
                ).execute(
                    arguments: [try Self.encode(status)])
            }
            for lifted in write.liftedSuspensions {
                try db.execute(
                    sql: "DELETE FROM suspensions WHERE service = ? AND environment = ?",
                    arguments: [lifted.service, lifted.environment ?? ""])
            }
            for suspension in write.suspensions {
                try db.execute(
                    sql: """
                        INSERT INTO suspensions (service, environment, body) VALUES (?, ?, ?)
                        ON CONFLICT (service, environment) DO UPDATE SET body = excluded.body
                        """,
                    arguments: [suspension.service, suspension.environment ?? "", try Self.encode(suspension)])
            }
            if let source = write.sourceStatus {
                try db.execute(
                    sql: """
                        INSERT INTO source_status (id, body) VALUES (1, ?)
                        ON CONFLICT (id) DO UPDATE SET body = excluded.body
                        """, arguments: [try Self.encode(source)])
            }
        }
    }

    // MARK: - Locking

    @discardableResult
    public func withExclusiveLock<T: Sendable>(timeout: Double, _ body: () async throws -> T) async throws -> T {
        let lock = try await FileLock.acquire(database: path, timeout: timeout)
        defer { lock.release() }
        return try await body()
    }

    // MARK: - Plumbing

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as DatabaseError {
            throw StateError.database(path: path, message: Self.explain(error))
        }
    }

    func write(_ body: @escaping @Sendable (Database) throws -> Void) async throws {
        try await writing(body)
    }

    func writing<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.write(body)
        } catch let error as DatabaseError {
            throw StateError.database(path: path, message: Self.explain(error))
        }
    }

    static func explain(_ error: DatabaseError) -> String {
        if error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            return "the database stayed locked by another process for 15s (\(error.message ?? "busy"))"
        }
        return error.message ?? "\(error)"
    }

    private static func event(_ row: Row) throws -> Event {
        let service: String? = row["service"]
        let environment: String? = row["environment"]
        return Event(
            id: row["id"],
            time: Date(timeIntervalSince1970: row["time"]),
            kind: Event.Kind(rawValue: row["kind"]) ?? .reconcileError,
            target: service.flatMap { s in environment.map { TargetID(service: s, environment: $0) } },
            revision: (row["revision"] as String?).flatMap(ObjectID.init(hex:)),
            version: row["version"],
            previousVersion: row["previous_version"],
            classification: (row["classification"] as String?).flatMap(ChangeClass.init(rawValue:)),
            message: row["message"],
            details: try (row["details"] as String?).map { try decode(JSONValue.self, $0) })
    }

    static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(type, from: Data(text.utf8))
    }
}

extension DeploymentCounts {
    mutating func add(_ row: Row, day: Int) {
        let ok: Int = row["succeeded"] ?? 0
        total += row["total"] ?? 0
        succeeded += ok
        failed += row["failed"] ?? 0
        unplanned += row["unplanned"] ?? 0
        if ok > 0 { succeededPerDay[day, default: 0] += ok }
    }
}
