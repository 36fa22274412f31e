/// What happened, as the event log records it. The raw values are a contract: `tide history --json` prints them
/// and scripts match on them; a manifest names them (validated against this list).
public enum EventKind: String, Sendable, Codable, CaseIterable {
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

extension EventKind {
    /// The kind a manifest names (`deployment.failed`), or nil for a name that is not one.
    public init?(named name: String) { self.init(rawValue: name) }

    /// Every kind's name, for an error that lists what may be written.
    public static var names: [String] { allCases.map(\.rawValue) }
}
