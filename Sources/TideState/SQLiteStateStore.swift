public import Foundation
internal import GRDB
import TideGit
public import TideManifest

/// Live state and the event log in one SQLite file (WAL mode), with its own schema migrations.
///
/// SQLite serialises writers itself; on top of that a reconcile pass holds an advisory `flock` on the state file
/// itself (see `FileLock`), so two `tide` processes never drive the same targets at once, whatever path they reach
/// the file by. The kernel drops the lock when a process dies, so a killed reconciler never leaves the state
/// locked. The file is opened by its resolved path, and a file with several hard links is refused: SQLite names
/// its write-ahead log after the path, so two names would mean two logs for one database.
public final class SQLiteStateStore: StateStore {
    public let path: String
    private let pool: DatabasePool
    public var location: String { "sqlite:" + path }

    public init(path given: String) throws {
        let directory = (given as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let path = FileLock.resolved(given)
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
            pool = try FileLock.withBlockingLock(path: FileLock.resolved(path) + ".migrate.lock") {
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
    }

    private static var migrator: DatabaseMigrator {
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
        return migrator
    }

    // MARK: - Reads

    public func installID() async throws -> String {
        try await read { db in try String.fetchOne(db, sql: "SELECT id FROM install LIMIT 1") ?? "" }
    }

    public func liveTargets() async throws -> [LiveTarget] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM targets ORDER BY environment, service").map(Self.target)
        }
    }

    public func liveTarget(_ id: TargetID) async throws -> LiveTarget? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM targets WHERE service = ? AND environment = ?",
                arguments: [id.service, id.environment]
            ).map(Self.target)
        }
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

    public func action(_ id: String) async throws -> ActionRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM actions WHERE id = ?", arguments: [id]).map { row in
                ActionRecord(
                    id: row["id"], target: TargetID(service: row["service"], environment: row["environment"]),
                    action: row["action"], status: ActionRecord.Status(rawValue: row["status"]) ?? .failed,
                    startedAt: Date(timeIntervalSince1970: row["started_at"]),
                    finishedAt: (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    message: row["message"])
            }
        }
    }

    // MARK: - Writes

    public func apply(_ write: StateWrite) async throws {
        // Cached statements: a rollout step writes a few rows, and compiling (and authorising) the statements
        // again for each one cost more than the writes.
        try await self.write { db in
            for target in write.targets {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO targets (service, environment, executor, phase, version, config_digest, revision,
                                             rollout, failed, updated_at, waiting, waiting_on, migrations,
                                             migrated_at, migration_use)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (service, environment) DO UPDATE SET
                            executor = excluded.executor, phase = excluded.phase, version = excluded.version,
                            config_digest = excluded.config_digest, revision = excluded.revision,
                            rollout = excluded.rollout, failed = excluded.failed, updated_at = excluded.updated_at,
                            waiting = excluded.waiting, waiting_on = excluded.waiting_on,
                            migrations = excluded.migrations, migrated_at = excluded.migrated_at,
                            migration_use = excluded.migration_use
                        """
                ).execute(
                    arguments: [
                        target.id.service, target.id.environment, target.executor, target.phase.rawValue,
                        target.version, target.configDigest, target.revision?.hex,
                        try target.rollout.map(Self.encode), try target.failed.map(Self.encode),
                        target.updatedAt.timeIntervalSince1970, target.waiting,
                        target.waitingOn.isEmpty ? nil : target.waitingOn.joined(separator: ","),
                        target.migrations.isEmpty ? nil : target.migrations.joined(separator: ","),
                        target.migratedAt?.timeIntervalSince1970,
                        target.migrationUse.isEmpty ? nil : try Self.encode(target.migrationUse),
                    ])
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
        }
    }

    // MARK: - Deployments

    static func day(_ date: Date) -> Int { Int((date.timeIntervalSince1970 / 86_400).rounded(.down)) }

    /// Inserts a deployment (with its changes and its day's summary), or updates the failure and recovery of an
    /// existing one (adjusting its day's failed count).
    private static func upsert(_ d: DeploymentRecord, in db: Database) throws {
        // Cached statements: a bulk load (the benchmark writes a million) compiles each once.
        let existing = try Bool.fetchOne(
            try db.cachedStatement(sql: "SELECT failed FROM deployments WHERE id = ?"), arguments: [d.id])
        let dayKey: StatementArguments = [day(d.finishedAt), d.target.service, d.target.environment]
        if let wasFailed = existing {
            try db.cachedStatement(
                sql: """
                    UPDATE deployments SET failed = ?, failure_reason = ?, failed_at = ?, recovered_at = ?
                    WHERE id = ?
                    """
            ).execute(arguments: [
                d.failed, d.failureReason, d.failedAt?.timeIntervalSince1970, d.recoveredAt?.timeIntervalSince1970,
                d.id,
            ])
            if wasFailed != d.failed {
                try db.cachedStatement(
                    sql:
                        "UPDATE deployment_days SET failed = failed + ? WHERE day = ? AND service = ? AND environment = ?"
                ).execute(arguments: [d.failed ? 1 : -1] + dayKey)
            }
            return
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO deployments (id, service, environment, production, revision, version, previous_version,
                    classification, unplanned, started_at, finished_at, succeeded, failed, failure_reason, failed_at,
                    recovered_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            d.id, d.target.service, d.target.environment, d.production, d.revision.hex, d.version,
            d.previousVersion, d.classification.rawValue, d.unplanned, d.startedAt.timeIntervalSince1970,
            d.finishedAt.timeIntervalSince1970, d.succeeded, d.failed, d.failureReason,
            d.failedAt?.timeIntervalSince1970, d.recoveredAt?.timeIntervalSince1970,
        ])
        var leads: [Double] = []
        if !d.changes.isEmpty {
            let change = try db.cachedStatement(
                sql: """
                    INSERT OR IGNORE INTO deployment_changes (deployment_id, commit_id, committed_at, service,
                        environment, production, finished_at, lead_seconds)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for item in d.changes {
                let lead = max(0, d.finishedAt.timeIntervalSince(item.committedAt))
                leads.append(lead)
                try change.execute(arguments: [
                    d.id, item.commit.hex, item.committedAt.timeIntervalSince1970, d.target.service,
                    d.target.environment, d.production, d.finishedAt.timeIntervalSince1970, lead,
                ])
            }
        }
        let previous = try Data.fetchOne(
            try db.cachedStatement(
                sql: "SELECT leads FROM deployment_days WHERE day = ? AND service = ? AND environment = ?"),
            arguments: dayKey)
        var packed = previous ?? Data()
        LeadTimePacking.append(leads, to: &packed)
        try db.cachedStatement(
            sql: """
                INSERT INTO deployment_days (day, service, environment, production, total, succeeded, failed,
                    unplanned, leads)
                VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)
                ON CONFLICT (day, service, environment) DO UPDATE SET total = total + 1,
                    succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed,
                    unplanned = unplanned + excluded.unplanned, production = excluded.production,
                    leads = excluded.leads
                """
        ).execute(
            arguments: dayKey + [d.production, d.succeeded ? 1 : 0, d.failed ? 1 : 0, d.unplanned ? 1 : 0, packed])
    }

    public func deployments(_ query: DeploymentQuery) async throws -> [DeploymentRecord] {
        var clauses: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if let target = query.target {
            clauses.append("d.service = ? AND d.environment = ?")
            arguments += [target.service, target.environment]
        }
        if let ids = query.ids {
            clauses.append("d.id IN (\(ids.map { _ in "?" }.joined(separator: ",")))")
            arguments += ids
        }
        if let commit = query.shippedCommit {
            clauses.append("d.id IN (SELECT deployment_id FROM deployment_changes WHERE commit_id = ?)")
            arguments.append(commit.hex)
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let sql =
            "SELECT d.* FROM deployments d \(filter) ORDER BY d.finished_at DESC, d.rowid DESC LIMIT \(max(0, query.limit))"
        let bound = StatementArguments(arguments)
        return try await read { db in
            try Row.fetchAll(db, sql: sql, arguments: bound).map { row in
                let id: String = row["id"]
                let changes = try Row.fetchAll(
                    db,
                    sql:
                        "SELECT commit_id, committed_at FROM deployment_changes WHERE deployment_id = ? ORDER BY committed_at",
                    arguments: [id]
                ).compactMap { change -> DeploymentRecord.Change? in
                    guard let commit = ObjectID(hex: change["commit_id"]) else { return nil }
                    return DeploymentRecord.Change(
                        commit: commit, committedAt: Date(timeIntervalSince1970: change["committed_at"]))
                }
                return DeploymentRecord(
                    id: id, target: TargetID(service: row["service"], environment: row["environment"]),
                    production: row["production"],
                    revision: ObjectID(hex: row["revision"]) ?? ObjectID.blobHash(of: []),
                    version: row["version"], previousVersion: row["previous_version"],
                    classification: ChangeClass(rawValue: row["classification"]) ?? .feature,
                    startedAt: Date(timeIntervalSince1970: row["started_at"]),
                    finishedAt: Date(timeIntervalSince1970: row["finished_at"]), succeeded: row["succeeded"],
                    failed: row["failed"], failureReason: row["failure_reason"],
                    failedAt: (row["failed_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    recoveredAt: (row["recovered_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    changes: changes)
            }
        }
    }

    public func firstDeployment(_ filter: DeploymentFilter) async throws -> Date? {
        var scope = filter
        scope.from = Date(timeIntervalSince1970: -1e12)
        scope.to = Date(timeIntervalSince1970: 1e12)
        let (clause, arguments) = Self.window(scope)
        return try await read { db in
            try Double.fetchOne(
                db, sql: "SELECT MIN(finished_at) FROM deployments WHERE \(clause)", arguments: arguments
            )
            .map(Date.init(timeIntervalSince1970:))
        }
    }

    /// The WHERE clause selecting a filter's deployments (or changes: both tables name the columns alike).
    private static func window(_ filter: DeploymentFilter) -> (String, StatementArguments) {
        scope(filter, "finished_at", filter.from.timeIntervalSince1970, filter.to.timeIntervalSince1970)
    }

    /// The WHERE clause selecting a filter's whole days in `deployment_days`.
    private static func dayClause(_ filter: DeploymentFilter, _ days: Range<Int>) -> (String, StatementArguments) {
        scope(filter, "day", days.lowerBound, days.upperBound)
    }

    /// Service, environment (or production) and `lower <= column < upper`.
    private static func scope(
        _ filter: DeploymentFilter, _ column: String, _ lower: some DatabaseValueConvertible,
        _ upper: some DatabaseValueConvertible
    ) -> (String, StatementArguments) {
        var clauses: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if let service = filter.service {
            clauses.append("service = ?")
            arguments.append(service)
        }
        if let environment = filter.environment {
            clauses.append("environment = ?")
            arguments.append(environment)
        } else {
            clauses.append("production = 1")
        }
        clauses.append("\(column) >= ? AND \(column) < ?")
        arguments += [lower, upper]
        return (clauses.joined(separator: " AND "), StatementArguments(arguments))
    }

    /// Splits a window into the whole UTC days it covers (read from `deployment_days`) and the partial days at
    /// its edges (read from the deployments themselves), so every figure stays exact.
    private static func split(_ filter: DeploymentFilter) -> (days: Range<Int>, edges: [DeploymentFilter]) {
        let first = Int((filter.from.timeIntervalSince1970 / 86_400).rounded(.up))
        let last = Int((filter.to.timeIntervalSince1970 / 86_400).rounded(.down))
        guard first < last else { return (0..<0, [filter]) }
        var edges: [DeploymentFilter] = []
        let dayStart = Date(timeIntervalSince1970: Double(first) * 86_400)
        let dayEnd = Date(timeIntervalSince1970: Double(last) * 86_400)
        if filter.from < dayStart {
            var edge = filter
            edge.to = dayStart
            edges.append(edge)
        }
        if dayEnd < filter.to {
            var edge = filter
            edge.from = dayEnd
            edges.append(edge)
        }
        return (first..<last, edges)
    }

    public func deploymentCounts(_ filter: DeploymentFilter) async throws -> DeploymentCounts {
        let (days, edges) = Self.split(filter)
        return try await read { db in
            var counts = DeploymentCounts(total: 0, succeeded: 0, failed: 0, unplanned: 0, succeededPerDay: [:])
            if !days.isEmpty {
                let (clause, arguments) = Self.dayClause(filter, days)
                let rows = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT day, SUM(total) AS total, SUM(succeeded) AS succeeded, SUM(failed) AS failed,
                            SUM(unplanned) AS unplanned
                        FROM deployment_days WHERE \(clause) GROUP BY day
                        """, arguments: arguments)
                while let row = try rows.next() {
                    counts.add(row, day: row["day"])
                }
            }
            for edge in edges {
                let (clause, arguments) = Self.window(edge)
                let rows = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT CAST(finished_at / 86400 AS INTEGER) AS day, COUNT(*) AS total,
                            SUM(succeeded) AS succeeded, SUM(failed) AS failed, SUM(unplanned) AS unplanned
                        FROM deployments WHERE \(clause) GROUP BY day
                        """, arguments: arguments)
                while let row = try rows.next() {
                    counts.add(row, day: row["day"])
                }
            }
            return counts
        }
    }

    public func leadTimes(_ filter: DeploymentFilter) async throws -> [Double] {
        let (days, edges) = Self.split(filter)
        return try await read { db in
            var values: [Double] = []
            if !days.isEmpty {
                let (clause, arguments) = Self.dayClause(filter, days)
                let blobs = try Data.fetchCursor(
                    db, sql: "SELECT leads FROM deployment_days WHERE \(clause)", arguments: arguments)
                while let blob = try blobs.next() { LeadTimePacking.unpack(blob, into: &values) }
            }
            for edge in edges {
                let (clause, arguments) = Self.window(edge)
                let cursor = try Double.fetchCursor(
                    db, sql: "SELECT lead_seconds FROM deployment_changes WHERE \(clause)", arguments: arguments)
                while let value = try cursor.next() { values.append(value) }
            }
            return values
        }
    }

    public func recoveryTimes(_ filter: DeploymentFilter) async throws -> (seconds: [Double], unrecovered: Int) {
        let (clause, arguments) = Self.window(filter)
        return try await read { db in
            var seconds: [Double] = []
            var unrecovered = 0
            let cursor = try Row.fetchCursor(
                db,
                sql: """
                    SELECT recovered_at - COALESCE(failed_at, finished_at) AS seconds
                    FROM deployments WHERE \(clause) AND failed = 1
                    """, arguments: arguments)
            while let row = try cursor.next() {
                if let value: Double = row["seconds"] { seconds.append(max(0, value)) } else { unrecovered += 1 }
            }
            return (seconds, unrecovered)
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

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as DatabaseError {
            throw StateError.database(path: path, message: Self.explain(error))
        }
    }

    private func write(_ body: @escaping @Sendable (Database) throws -> Void) async throws {
        do {
            try await pool.write(body)
        } catch let error as DatabaseError {
            throw StateError.database(path: path, message: Self.explain(error))
        }
    }

    private static func explain(_ error: DatabaseError) -> String {
        if error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            return "the database stayed locked by another process for 15s (\(error.message ?? "busy"))"
        }
        return error.message ?? "\(error)"
    }

    private static func target(_ row: Row) throws -> LiveTarget {
        LiveTarget(
            id: TargetID(service: row["service"], environment: row["environment"]),
            executor: row["executor"],
            phase: TargetPhase(rawValue: row["phase"]) ?? .pending,
            version: row["version"],
            configDigest: row["config_digest"],
            revision: (row["revision"] as String?).flatMap(ObjectID.init(hex:)),
            rollout: try (row["rollout"] as String?).map { try decode(Rollout.self, $0) },
            failed: try (row["failed"] as String?).map { try decode(FailedAttempt.self, $0) },
            waiting: row["waiting"],
            waitingOn: (row["waiting_on"] as String?)?.split(separator: ",").map(String.init) ?? [],
            migrations: (row["migrations"] as String?)?.split(separator: ",").map(String.init) ?? [],
            migratedAt: (row["migrated_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
            migrationUse: try (row["migration_use"] as String?).map { try decode(MigrationUse.self, $0) }
                ?? MigrationUse(),
            updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
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
    fileprivate mutating func add(_ row: Row, day: Int) {
        let ok: Int = row["succeeded"] ?? 0
        total += row["total"] ?? 0
        succeeded += ok
        failed += row["failed"] ?? 0
        unplanned += row["unplanned"] ?? 0
        if ok > 0 { succeededPerDay[day, default: 0] += ok }
    }
}
