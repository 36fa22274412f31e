public import Foundation
public import TideGit
public import TideManifest

/// One deployment of one target, as DORA counts it: kept beside the event log, written in the same transaction
/// as the event that finished the deployment, and updated when a later deployment shows it needed intervention.
public struct DeploymentRecord: Sendable, Codable, Hashable {
    /// A commit the deployment shipped, and when it was committed.
    public struct Change: Sendable, Codable, Hashable {
        public var commit: ObjectID
        public var committedAt: Date

        public init(commit: ObjectID, committedAt: Date) {
            self.commit = commit
            self.committedAt = committedAt
        }
    }

    public var id: String
    public var target: TargetID
    /// Whether the environment was a production one when the deployment ran.
    public var production: Bool
    public var revision: ObjectID
    public var version: String
    public var previousVersion: String?
    public var classification: ChangeClass
    public var startedAt: Date
    public var finishedAt: Date
    /// The rollout completed (false: it failed).
    public var succeeded: Bool
    /// The deployment needed intervention: its rollout failed, or it was later rolled back, reverted or
    /// followed by a hotfix.
    public var failed: Bool
    public var failureReason: String?
    /// When the failure started to count: the rollout failing, or the deployment itself for one later undone.
    public var failedAt: Date?
    /// When the target was healthy again on another deployment.
    public var recoveredAt: Date?
    /// The commits that reached the target with this deployment (only for successful ones).
    public var changes: [Change]

    public init(
        id: String, target: TargetID, production: Bool, revision: ObjectID, version: String,
        previousVersion: String?, classification: ChangeClass, startedAt: Date, finishedAt: Date, succeeded: Bool,
        failed: Bool = false, failureReason: String? = nil, failedAt: Date? = nil, recoveredAt: Date? = nil,
        changes: [Change] = []
    ) {
        self.id = id
        self.target = target
        self.production = production
        self.revision = revision
        self.version = version
        self.previousVersion = previousVersion
        self.classification = classification
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.succeeded = succeeded
        self.failed = failed
        self.failureReason = failureReason
        self.failedAt = failedAt
        self.recoveredAt = recoveredAt
        self.changes = changes
    }

    /// Unplanned work (rollback, hotfix): DORA's rework.
    public var unplanned: Bool { classification.isUnplanned }
}

/// Which deployment records to list, newest first.
public struct DeploymentQuery: Sendable, Hashable {
    public var target: TargetID?
    public var shippedCommit: ObjectID?
    public var ids: [String]?
    public var limit: Int

    public init(target: TargetID? = nil, shippedCommit: ObjectID? = nil, ids: [String]? = nil, limit: Int = 100) {
        self.target = target
        self.shippedCommit = shippedCommit
        self.ids = ids
        self.limit = limit
    }
}

/// The deployments a DORA figure is computed over: those that finished in `[from, to)`.
public struct DeploymentFilter: Sendable, Hashable {
    public var from: Date
    public var to: Date
    /// Only this environment; nil: every production environment.
    public var environment: String?
    public var service: String?

    public init(from: Date, to: Date, environment: String? = nil, service: String? = nil) {
        self.from = from
        self.to = to
        self.environment = environment
        self.service = service
    }

    public func matches(_ record: DeploymentRecord) -> Bool {
        guard record.finishedAt >= from, record.finishedAt < to else { return false }
        return matchesScope(record)
    }

    /// Environment and service only, ignoring the window.
    public func matchesScope(_ record: DeploymentRecord) -> Bool {
        if let environment {
            guard record.target.environment == environment else { return false }
        } else if !record.production {
            return false
        }
        if let service, record.target.service != service { return false }
        return true
    }
}

/// Counts over a window of deployments.
public struct DeploymentCounts: Sendable, Hashable {
    /// Deployments that finished (successful or not).
    public var total: Int
    public var succeeded: Int
    /// Deployments that needed intervention.
    public var failed: Int
    /// Unplanned deployments (rollbacks, hotfixes).
    public var unplanned: Int
    /// Successful deployments per UTC day (days since 1970-01-01 → count).
    public var succeededPerDay: [Int: Int]

    public init(total: Int, succeeded: Int, failed: Int, unplanned: Int, succeededPerDay: [Int: Int]) {
        self.total = total
        self.succeeded = succeeded
        self.failed = failed
        self.unplanned = unplanned
        self.succeededPerDay = succeededPerDay
    }
}
