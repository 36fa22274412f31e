public import Foundation
public import TideGit
public import TideManifest

/// One entry of the append-only event log.
public struct Event: Sendable, Codable, Hashable {
    /// Event types; the raw values are part of `tide history --json`.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case revisionAccepted = "revision.accepted"
        case revisionRejected = "revision.rejected"
        case deploymentStarted = "deployment.started"
        case stepStarted = "step.started"
        case stepSucceeded = "step.succeeded"
        case stepFailed = "step.failed"
        /// A step failed transiently after its retries: the target waits and tries it again (same action id).
        case stepRetrying = "step.retrying"
        /// Before re-running an interrupted step, Tide stopped the executor processes a killed Tide left running.
        case stepOrphansStopped = "step.orphans-stopped"
        case deploymentSucceeded = "deployment.succeeded"
        case deploymentFailed = "deployment.failed"
        case targetRemoved = "target.removed"
        case approvalGranted = "approval.granted"
        case gateWaiting = "gate.waiting"
        case promotionCommitted = "promotion.committed"
        case deploymentRolledBack = "deployment.rolled-back"
        /// Taking traffic back to stable failed; it is tried again (the target stays RollingBack).
        case rollbackFailed = "rollback.failed"
        /// A rollout pre-empted by a newer desired state (a newer version, changed steps) before it finished.
        case deploymentSuperseded = "deployment.superseded"
        case revertCommitted = "revert.committed"
        case rolloutPaused = "rollout.paused"
        case rolloutResumed = "rollout.resumed"
        case rolloutPromoted = "rollout.promoted"
        case rolloutAborted = "rollout.aborted"
        case rolloutRetried = "rollout.retried"
        /// Tide will not start a rollout (a rollback past a contracted migration); the target keeps what it runs.
        case rolloutRefused = "rollout.refused"
        case reconcileError = "reconcile.error"
        case fetchFailed = "fetch.failed"
        case fetchRecovered = "fetch.recovered"
        case pushRejected = "push.rejected"
        case pushFailed = "push.failed"
        case migrationApplied = "migration.applied"
        case migrationFailed = "migration.failed"
        /// `tide suspend`: Tide leaves the target alone until `tide unsuspend`.
        case targetSuspended = "target.suspended"
        case targetUnsuspended = "target.unsuspended"
        /// A candidate an abort or a failure kept running (`abortScaleDownDelay`) was scaled down.
        case candidateScaledDown = "candidate.scaled-down"
    }

    /// Assigned by the store, increasing.
    public var id: Int64?
    public var time: Date
    public var kind: Kind
    public var target: TargetID?
    public var revision: ObjectID?
    public var version: String?
    public var previousVersion: String?
    public var classification: ChangeClass?
    public var message: String
    /// Extra structured facts (action id, exit status, stderr, diagnostics).
    public var details: JSONValue?

    public init(
        id: Int64? = nil, time: Date, kind: Kind, target: TargetID? = nil, revision: ObjectID? = nil,
        version: String? = nil, previousVersion: String? = nil, classification: ChangeClass? = nil,
        message: String, details: JSONValue? = nil
    ) {
        self.id = id
        self.time = time
        self.kind = kind
        self.target = target
        self.revision = revision
        self.version = version
        self.previousVersion = previousVersion
        self.classification = classification
        self.message = message
        self.details = details
    }
}

/// Which events to read, newest first.
public struct EventQuery: Sendable, Hashable {
    public var service: String?
    public var environment: String?
    public var kinds: [Event.Kind]?
    public var limit: Int

    public init(service: String? = nil, environment: String? = nil, kinds: [Event.Kind]? = nil, limit: Int = 100) {
        self.service = service
        self.environment = environment
        self.kinds = kinds
        self.limit = limit
    }

    public func matches(_ event: Event) -> Bool {
        if let service, event.target?.service != service { return false }
        if let environment, event.target?.environment != environment { return false }
        if let kinds, !kinds.contains(event.kind) { return false }
        return true
    }
}
