public import TideManifest
public import TideState

/// What the engine needs from a strategy: its steps, how careful it is, whether stable survives until promotion.
/// One file per strategy conforms its manifest type to this.
public protocol RolloutStrategy: Sendable {
    /// Policies' `minimumStrategy` accepts a strategy whose rank is at least the minimum's.
    static var rank: Int { get }
    var name: StrategyType { get }
    /// Stable keeps running until the candidate is promoted, so a failure can always send traffic back to it.
    var keepsStable: Bool { get }
    /// An analysis that runs beside the steps for the whole rollout.
    var backgroundAnalysis: String? { get }
    /// The steps from the first executor call to the last, each with its label.
    var plannedSteps: [PlannedStep] { get }
    /// How long an aborted candidate keeps running (see `RolloutPlan.abortScaleDownDelay`).
    var abortScaleDownDelay: Double? { get }
}

extension RolloutStrategy {
    public var keepsStable: Bool { true }
    public var backgroundAnalysis: String? { nil }
    public var abortScaleDownDelay: Double? { nil }

    /// Deploy the candidate beside stable with no traffic, and check it.
    public static var candidate: [RolloutStep] { [.action(.deploy, weight: 0), .action(.health, weight: 0)] }
    /// Give the candidate all the traffic, and check it.
    public static var promotion: [RolloutStep] { [.action(.promote, weight: 100), .action(.health, weight: 100)] }

    /// Steps labelled `step N/M: action`, for strategies whose steps are all Tide's own.
    public static func numbered(_ steps: [RolloutStep]) -> [PlannedStep] {
        steps.enumerated().map { index, step in
            PlannedStep(step, label: "step \(index + 1)/\(steps.count): \(describe(step))")
        }
    }

    /// A step in a few words: `set-weight 25%`, `pause 5m`, `analysis error-rate`.
    public static func describe(_ step: RolloutStep) -> String {
        switch step {
        case .action(let action, let weight, _) where [.setWeight, .mirror, .split].contains(action):
            "\(action.rawValue) \(weight)%"
        case .action(let action, _, _): action.rawValue
        case .pause(nil): "pause"
        case .pause(let seconds?): "pause \(ManifestDuration.format(seconds))"
        case .analysis(let name): "analysis \(name)"
        }
    }

    /// The frozen plan a rollout with this strategy runs.
    public var plan: RolloutPlan {
        let steps = plannedSteps
        var plan = RolloutPlan(
            strategy: name, steps: steps, backgroundAnalysis: backgroundAnalysis, keepsStable: keepsStable,
            digest: RolloutPlan.digest(steps.map(\.step), background: backgroundAnalysis))
        plan.abortScaleDownDelay = abortScaleDownDelay
        return plan
    }
}

extension StrategySpec {
    /// The engine's side of the manifest's strategy: the registration of every strategy with the engine.
    public var engine: any RolloutStrategy {
        switch self {
        case .recreate(let strategy): strategy
        case .rolling(let strategy): strategy
        case .blueGreen(let strategy): strategy
        case .canary(let strategy): strategy
        case .shadow(let strategy): strategy
        case .ab(let strategy): strategy
        }
    }
}

extension StrategyType {
    /// How careful the strategy is, for policies' `minimumStrategy`.
    public var rank: Int {
        switch self {
        case .recreate: RecreateStrategy.rank
        case .rolling: RollingStrategy.rank
        case .blueGreen: BlueGreenStrategy.rank
        case .canary: CanaryStrategy.rank
        case .shadow: ShadowStrategy.rank
        case .ab: ABStrategy.rank
        }
    }
}

extension RolloutPlan {
    /// The plan a rollout of `strategy` runs; with nothing running yet there is no stable side to compare with,
    /// so a first deployment goes straight to 100 % (recreate), as Argo Rollouts does.
    public static func of(_ strategy: StrategySpec, firstDeployment: Bool) -> RolloutPlan {
        (firstDeployment ? StrategySpec() : strategy).engine.plan
    }

    /// A fast rollback (`rollbackWindow`): the release comes back at once, as a recreate would bring it — no
    /// weights, pauses or analyses, since it ran healthy here a short while ago.
    public static var fastRollbackPlan: RolloutPlan {
        var plan = StrategySpec().engine.plan
        plan.fastRollback = true
        return plan
    }

    /// The steps and what their traffic actions carry, in the form rollouts recorded before plans were kept (so a
    /// rollout under way across an upgrade is not pre-empted).
    static func digest(_ steps: [RolloutStep], background: String?) -> String {
        var mirror: Int64 = 100
        var match: JSONValue = .null
        let written: [JSONValue] = steps.map { step in
            switch step {
            case .action(let action, let weight, let traffic):
                if case .object(let fields) = traffic {
                    if case .int(let share) = fields["mirror"] { mirror = share }
                    if let value = fields["match"] { match = value }
                }
                return .string("action \(action.rawValue) \(weight)")
            case .pause(let seconds): return .string("pause \(seconds.map { String($0) } ?? "open")")
            case .analysis(let name): return .string("analysis \(name)")
            }
        }
        return DesiredTarget.digest(
            of: .array(written + [.string("background \(background ?? "-")"), .string("mirror \(mirror)"), match]))
    }
}
