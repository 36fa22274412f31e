public import Foundation
internal import GRDB
import TideGit
import TideManifest

/// The service's heartbeat and the requests operators' verbs hand it (`OperatorChannel`).
extension SQLiteStateStore {
    public func beat(_ service: ServiceRecord) async throws {
        let body = try Self.encode(service)
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO services (id, heartbeat_at, body) VALUES (?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, body = excluded.body
                    """, arguments: [service.id, service.heartbeatAt.timeIntervalSince1970, body])
        }
    }

    public func removeService(_ id: String) async throws {
        try await write { db in try db.execute(sql: "DELETE FROM services WHERE id = ?", arguments: [id]) }
    }

    public func services() async throws -> [ServiceRecord] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT body FROM services ORDER BY heartbeat_at DESC").map {
                try Self.decode(ServiceRecord.self, $0)
            }
        }
    }

    public func submit(_ request: OperatorRequest) async throws -> Int64 {
        var request = request
        request.status = .pending
        let body = try Self.encode(request)
        let created = request.createdAt.timeIntervalSince1970
        return try await writing { db in
            try db.execute(
                sql: "INSERT INTO operator_requests (status, created_at, body) VALUES ('pending', ?, ?)",
                arguments: [created, body])
            return db.lastInsertedRowID
        }
    }

    public func claimRequests(by claimant: String) async throws -> [OperatorRequest] {
        try await writing { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT id, body FROM operator_requests WHERE status = 'pending' ORDER BY id")
            var claimed: [OperatorRequest] = []
            for row in rows {
                var request = try Self.decode(OperatorRequest.self, row["body"])
                request.id = row["id"]
                request.status = .running
                request.claimedBy = claimant
                try db.execute(
                    sql:
                        "UPDATE operator_requests SET status = 'running', body = ? WHERE id = ? AND status = 'pending'",
                    arguments: [try Self.encode(request), request.id])
                if db.changesCount == 1 { claimed.append(request) }
            }
            return claimed
        }
    }

    public func finish(_ id: Int64, output: String, errorOutput: String, exitStatus: Int32, at: Date) async throws {
        try await write { db in
            guard
                let body = try String.fetchOne(
                    db, sql: "SELECT body FROM operator_requests WHERE id = ?", arguments: [id])
            else { return }
            var request = try Self.decode(OperatorRequest.self, body)
            request.status = .done
            request.output = output
            request.errorOutput = errorOutput
            request.exitStatus = exitStatus
            request.finishedAt = at
            try db.execute(
                sql: "UPDATE operator_requests SET status = 'done', body = ? WHERE id = ?",
                arguments: [try Self.encode(request), id])
        }
    }

    public func cancelIfPending(_ id: Int64) async throws -> Bool {
        try await writing { db in
            try db.execute(
                sql: "UPDATE operator_requests SET status = 'cancelled' WHERE id = ? AND status = 'pending'",
                arguments: [id])
            return db.changesCount == 1
        }
    }

    public func request(_ id: Int64) async throws -> OperatorRequest? {
        try await read { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT id, status, body FROM operator_requests WHERE id = ?", arguments: [id])
            else { return nil }
            var request = try Self.decode(OperatorRequest.self, row["body"])
            request.id = row["id"]
            request.status = OperatorRequest.Status(rawValue: row["status"]) ?? request.status
            return request
        }
    }
}
