public import TideGit
public import TideManifest
public import TideState

/// The idempotency key of one executor call (`TIDE_ACTION_ID`), built in one place: the same for the same step
/// of the same attempt — a step re-run after a crash carries the key it had — and new for every new attempt of a
/// version (a retry, a rollout started again), so an idempotent executor never skips a step it has not done.
public struct ActionID: Sendable, Hashable, CustomStringConvertible {
    /// Which executor call of a target's attempt: each kind of call written in one place.
    public enum Step: Sendable, Hashable, CustomStringConvertible {
        /// Step `index` of the rollout's frozen plan: `3-set-weight`.
        case rollout(index: Int, ExecutorAction)
        /// The automatic rollback (or `tide abort`) to stable, and its health check.
        case rollback
        case rollbackHealth
        /// The rollback that tells the executor a pre-empted candidate is gone.
        case preemptedRollback
        /// One measurement: analysis, round, metric, and whether of the baseline (stable) side.
        case measure(analysis: String, round: Int, metric: String, baseline: Bool)
        /// Removing a target no longer desired.
        case remove
        /// The `scale-down` of a candidate an abort or a failure kept running (`abortScaleDownDelay`).
        case keptCandidateScaleDown

        public var description: String {
            switch self {
            case .rollout(let index, let action): "\(index)-\(action.rawValue)"
            case .rollback: "rollback"
            case .rollbackHealth: "rollback-health"
            case .preemptedRollback: "preempted-rollback"
            case .measure(let analysis, let round, let metric, let baseline):
                "analysis-\(analysis)-\(round)-\(metric)" + (baseline ? "-baseline" : "")
            case .remove: "remove"
            case .keptCandidateScaleDown: "aborted-scale-down"
            }
        }
    }

    public var target: TargetID
    public var revision: ObjectID
    /// The rollout attempt (`Rollout.attempt`); empty for calls outside a rollout (a removal).
    public var attempt: String
    public var step: Step

    public init(target: TargetID, revision: ObjectID, attempt: String, step: Step) {
        self.target = target
        self.revision = revision
        self.attempt = attempt
        self.step = step
    }

    /// A step of `rollout`.
    public init(_ target: TargetID, _ rollout: Rollout, step: Step) {
        self.init(target: target, revision: rollout.revision, attempt: rollout.attempt ?? "", step: step)
    }

    public var description: String {
        "\(target.service).\(target.environment).\(revision.short)" + (attempt.isEmpty ? "" : ".\(attempt)")
            + ".\(step)"
    }
}
