public import TideManifest
public import TideState

extension Rollout {
    /// The steps the rollout runs: frozen when it started; for a rollout started before plans were kept, the
    /// desired strategy's (whose digest it was started with).
    public func steps(declared: StrategySpec?) -> RolloutPlan {
        plan ?? RolloutPlan.of(declared ?? StrategySpec(), firstDeployment: previousVersion == nil)
    }

    /// Whether the desired strategy still runs the steps this rollout runs; when not, the rollout is pre-empted.
    public func runsSameSteps(as declared: StrategySpec?) -> Bool {
        let desired = RolloutPlan.of(declared ?? StrategySpec(), firstDeployment: previousVersion == nil)
        if let plan { return plan.digest == desired.digest }
        return stepsDigest == nil || stepsDigest == desired.digest
    }
}
