import Foundation
internal import GRDB
import TideGit
public import TideManifest

/// Live targets: read through `LiveTargetCache` (the store's memory, checked against `targets_version`), and the
/// rows as a read returns them.
extension SQLiteStateStore {
    public func liveTargets() async throws -> [LiveTarget] {
        let cached = liveCache.withLock { $0 }
        let fresh = try await read { db -> LiveTargetCache? in
            // One read transaction: the counter and the rows it counts agree.
            let version = try Self.targetsVersion(db)
            if let cached, cached.version == version {
                if cached.stale.isEmpty { return cached }
                return cached.patched(try Self.targets(Array(cached.stale), in: db))
            }
            let targets = try Row.fetchAll(db, sql: "SELECT * FROM targets ORDER BY environment, service").map(
                Self.target)
            return LiveTargetCache(version: version, targets: targets)
        }
        guard let fresh else {
            // A stale row's target went (another process's write would have moved the version): read it all.
            liveCache.withLock { $0 = nil }
            return try await liveTargets()
        }
        liveCache.withLock { cache in
            // (A write of this process since moved the version on: the cache follows it, and stays.)
            if (cache?.version ?? -1) <= fresh.version { cache = fresh }
        }
        return fresh.targets
    }

    static func targetsVersion(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT n FROM targets_version WHERE id = 1") ?? 0
    }

    /// The rows of `ids` as a read returns them (after a write, in its transaction).
    static func targets(_ ids: [TargetID], in db: Database) throws -> [LiveTarget] {
        try ids.compactMap { id in
            try Row.fetchOne(
                db, sql: "SELECT * FROM targets WHERE service = ? AND environment = ?",
                arguments: [id.service, id.environment]
            ).map(Self.target)
        }
    }

    public func liveTarget(_ id: TargetID) async throws -> LiveTarget? {
        try await read { db in try Self.targets([id], in: db).first }
    }

    static func target(_ row: Row) throws -> LiveTarget {
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
            waitingOn: WaitReason.column(row["waiting_on"] as String?),
            migrations: (row["migrations"] as String?)?.split(separator: ",").map(String.init) ?? [],
            migratedAt: (row["migrated_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
            migrationUse: try (row["migration_use"] as String?).map { try decode(MigrationUse.self, $0) }
                ?? MigrationUse(),
            release: try (row["release"] as String?).map { try decode(Release.self, $0) },
            keptCandidate: try (row["kept_candidate"] as String?).map { try decode(KeptCandidate.self, $0) },
            updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }
}
