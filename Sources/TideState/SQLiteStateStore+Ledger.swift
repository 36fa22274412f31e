public import Foundation
internal import GRDB
import TideGit
import TideManifest

/// The deployment ledger DORA reads: records, the per-day summary kept up to date by every write, and the
/// aggregate queries over a window.
extension SQLiteStateStore {

    static func day(_ date: Date) -> Int { Int((date.timeIntervalSince1970 / 86_400).rounded(.down)) }

    /// Inserts a deployment (with its changes and its day's summary), or updates the failure and recovery of an
    /// existing one (adjusting its day's failed count).
    static func upsert(_ d: DeploymentRecord, in db: Database) throws {
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
    static func window(_ filter: DeploymentFilter) -> (String, StatementArguments) {
        scope(filter, "finished_at", filter.from.timeIntervalSince1970, filter.to.timeIntervalSince1970)
    }

    /// The WHERE clause selecting a filter's whole days in `deployment_days`.
    static func dayClause(_ filter: DeploymentFilter, _ days: Range<Int>) -> (String, StatementArguments) {
        scope(filter, "day", days.lowerBound, days.upperBound)
    }

    /// Service, environment (or production) and `lower <= column < upper`.
    static func scope(
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
    static func split(_ filter: DeploymentFilter) -> (days: Range<Int>, edges: [DeploymentFilter]) {
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
}
