import TideExecutors
public import TideManifest
public import TideState

extension Rollout {
    /// The steps the rollout runs: frozen when it started; for a rollout started before plans were kept, the
    /// desired strategy's (whose digest it was started with).
    public func steps(declared: StrategySpec?) -> RolloutPlan {
        plan ?? RolloutPlan.of(declared ?? StrategySpec(), firstDeployment: previousVersion == nil)
    }

    /// The strategy the rollout runs (`TIDE_STRATEGY` of its actions): its plan's; recreate for a rollout from before
    /// plans were kept that has not taken a step since (the next one records its plan).
    public var strategy: StrategyType { plan?.strategy ?? .recreate }

    /// Whether the desired strategy still runs the steps this rollout runs; when not, the rollout is pre-empted.
    public func runsSameSteps(as declared: StrategySpec?) -> Bool {
        let desired = RolloutPlan.of(declared ?? StrategySpec(), firstDeployment: previousVersion == nil)
        // A fast rollback runs no steps of the strategy: an edit of them has nothing to pre-empt.
        if plan?.fastRollback == true { return true }
        if let plan { return plan.digest == desired.digest }
        return stepsDigest == nil || stepsDigest == desired.digest
    }

    /// The first analysis the rollout runs whose definition in `analyses` is not the one it froze (nil: none
    /// changed, or the plan froze none).
    public func changedAnalysis(in analyses: [String: AnalysisManifest]) -> String? {
        guard let frozen = plan?.analyses else { return nil }
        return frozen.keys.sorted().first { name in analyses[name]?.digest != frozen[name] }
    }
}

extension ActionRequest {
    /// Names both sides of `rollout` on a request for its candidate: the candidate's config digest, and stable's
    /// digest, config and revision — so a config-only change (same version on both sides) can still be told apart.
    mutating func identifySides(of rollout: Rollout) {
        configDigest = rollout.configDigest
        previousConfigDigest = rollout.stableConfigDigest
        previousConfig = rollout.stableConfig
        previousRevision = rollout.stableRevision?.hex
    }

    /// Names both sides of a request that goes back to stable (a rollback): `version` is stable, with its config
    /// digest; the previous side is the candidate being undone.
    mutating func identifySides(undoing rollout: Rollout) {
        configDigest = rollout.stableConfigDigest
        previousConfigDigest = rollout.configDigest
        previousConfig = rollout.config
        previousRevision = rollout.revision.hex
    }
}
