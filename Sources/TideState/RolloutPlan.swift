public import TideManifest

/// One step of a rollout.
public enum RolloutStep: Sendable, Hashable, Codable {
    /// An executor action, with the candidate's share of traffic (or of instances, for rolling) once it is done,
    /// and what a traffic action needs besides the weight (`{"match": …}` for split, `{"mirror": N}` for mirror).
    case action(ExecutorAction, weight: Int, traffic: JSONValue? = nil)
    /// Wait this many seconds, or (nil) until `tide promote`.
    case pause(Double?)
    /// Run the named Analysis.
    case analysis(String)
}

/// A step with its name in the words of the manifest (`step 2/4: setWeight 10%`, `deploy the candidate`).
public struct PlannedStep: Sendable, Hashable, Codable {
    public var step: RolloutStep
    public var label: String

    public init(_ step: RolloutStep, label: String) {
        self.step = step
        self.label = label
    }
}

/// The steps a rollout runs, frozen when it starts: a change to the manifest's strategy never changes a rollout
/// under way (it pre-empts it instead, by `digest`).
public struct RolloutPlan: Sendable, Hashable, Codable {
    /// The strategy the rollout runs (`TIDE_STRATEGY`); recreate for a first deployment.
    public var strategy: StrategyType
    public var steps: [PlannedStep]
    /// An analysis that runs beside the steps, from the candidate's first check to promotion.
    public var backgroundAnalysis: String?
    /// Stable keeps running until promotion, so a failure sends traffic back to it.
    public var keepsStable: Bool
    /// Identifies the steps and what they carry (Argo Rollouts' step hash).
    public var digest: String
    /// The digest of each analysis the steps run (step and background), frozen with them: an edit of one
    /// pre-empts the rollout like an edit of its steps (nil for plans frozen before analyses were).
    public var analyses: [String: String]?
    /// After an abort or a failure, how long the candidate keeps running once stable serves again: nil, it goes
    /// with the rollback; 0, until the next rollout; else this many seconds (`abortScaleDownDelay`).
    public var abortScaleDownDelay: Double?
    /// A fast rollback (`rollbackWindow`): back to a release that ran here recently, straight to 100 % without the
    /// strategy's steps and analyses. Never pre-empted by an edit of the strategy.
    public var fastRollback: Bool?

    /// The analyses the plan runs.
    public var analysisNames: [String] {
        var names: [String] = backgroundAnalysis.map { [$0] } ?? []
        for planned in steps {
            if case .analysis(let name) = planned.step, !names.contains(name) { names.append(name) }
        }
        return names
    }

    public init(
        strategy: StrategyType, steps: [PlannedStep], backgroundAnalysis: String?, keepsStable: Bool, digest: String
    ) {
        self.strategy = strategy
        self.steps = steps
        self.backgroundAnalysis = backgroundAnalysis
        self.keepsStable = keepsStable
        self.digest = digest
    }

    /// The label of step `index`, "done" past the end.
    public func label(_ index: Int) -> String { index < steps.count ? steps[index].label : "done" }
}
