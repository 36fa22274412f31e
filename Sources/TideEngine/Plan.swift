public import TideGit
public import TideManifest
import TideState

/// What one target needs to reach desired state.
public struct PlannedAction: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable {
        /// Roll out a version and config.
        case deploy
        /// Finish a rollout that was interrupted (a crash, a kill); completed steps are not repeated.
        case resume
        /// The target left desired state: tell the executor to remove it.
        case remove
        /// Nothing to do: live matches desired.
        case none
        /// Desired state already failed here; not retried until it changes.
        case holdFailed = "hold-failed"
        /// Tide will not start it: a rollback past a contracted migration (the reason says what to do).
        case refuse
        /// A deployment that gates hold for now (see `gates`).
        case wait
        /// `tide suspend`: Tide leaves the target alone (the reason says who suspended it).
        case suspended
        /// Taking a rollout back to stable goes on (see `RollbackState`): nothing else happens to the target first.
        case rollingBack = "rolling-back"
    }

    public var target: TargetID
    public var kind: Kind
    public var executor: String
    public var fromVersion: String?
    public var toVersion: String?
    public var configChanged: Bool
    public var classification: ChangeClass?
    /// Why the change was classified so, or why nothing happens.
    public var reason: String?
    /// Same-environment services this target waits for.
    public var dependsOn: [String]
    /// The commit a revert in this change undoes, for a ROLLBACK by revert.
    public var revertedCommit: ObjectID? = nil
    /// What holds a `wait` action.
    public var gates: [Gate] = []
    public var risk: RiskLevel?
    /// A ROLLBACK within the service's `rollbackWindow`: it skips the strategy's steps and analyses.
    public var fastRollback = false

    public var changesSomething: Bool {
        [.deploy, .resume, .remove, .wait, .rollingBack].contains(kind)
    }
    // A refused rollout changes nothing: it is listed with the held ones.
}

/// The ordered actions that take live state to the desired state of one revision.
public struct Plan: Sendable, Codable {
    /// The revision the desired state was read from.
    public var revision: ObjectID
    /// Dependencies before dependents; removals last, dependents first.
    public var actions: [PlannedAction]
    /// Auto-promotions that wait for a bake to end, with when they are due.
    public var promotions: [ScheduledPromotion] = []
    /// Contracts and downs that are due, or wait (for their time, or for what blocks them), with their statements:
    /// a plan shows a `DROP COLUMN` before it runs.
    public var migrations: [MigrationReportEntry] = []
    /// Environments a rollback pinned that no longer follow `spec.version`.
    public var pins: [RollbackPin] = []

    public var pending: [PlannedAction] { actions.filter(\.changesSomething) }
}
