public import TideGit
public import TideManifest
public import TideState

/// The idempotency key of one executor call (`TIDE_ACTION_ID`), built in one place: the same for the same step
/// of the same attempt — a step re-run after a crash carries the key it had — and new for every new attempt of a
/// version (a retry, a rollout started again), so an idempotent executor never skips a step it has not done.
public struct ActionID: Sendable, Hashable, CustomStringConvertible {
    public var target: TargetID
    public var revision: ObjectID
    /// The rollout attempt (`Rollout.attempt`); empty for calls outside a rollout (a removal).
    public var attempt: String
    /// The step: `3-set-weight`, `rollback`, `rollback-health`, `remove`, `analysis-NAME-ROUND-METRIC`.
    public var step: String

    public init(target: TargetID, revision: ObjectID, attempt: String, step: String) {
        self.target = target
        self.revision = revision
        self.attempt = attempt
        self.step = step
    }

    /// A step of `rollout`.
    public init(_ target: TargetID, _ rollout: Rollout, step: String) {
        self.init(target: target, revision: rollout.revision, attempt: rollout.attempt ?? "", step: step)
    }

    public var description: String {
        "\(target.service).\(target.environment).\(revision.short)" + (attempt.isEmpty ? "" : ".\(attempt)")
            + ".\(step)"
    }
}
