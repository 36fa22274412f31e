public import TideManifest

extension Reconciler {
    /// Where a rollout is, in the words of its manifest. A canary's steps are numbered as the user wrote them
    /// (`step 2/4: pause`), and the steps Tide adds around them are named ("deploy the candidate", "promote");
    /// the other strategies' steps are Tide's own, numbered in order.
    ///
    /// - Parameters:
    ///   - index: the rollout's internal step index (`Rollout.step`).
    ///   - strategy: the strategy the rollout runs (a first deployment runs recreate).
    public static func stepLabel(_ index: Int, strategy: StrategySpec) -> String {
        let steps = Self.steps(for: strategy)
        guard strategy.type == .canary else {
            return index < steps.count ? "step \(index + 1)/\(steps.count)" : "done"
        }
        // candidate deploy + health, the user's steps, promote + health (see `steps(for:)`).
        let written = strategy.steps
        switch index {
        case 0: return "deploy the candidate"
        case 1: return "check the candidate"
        case 2..<(2 + written.count):
            let position = index - 2
            return "step \(position + 1)/\(written.count): " + describe(written[position])
        case 2 + written.count: return "promote"
        case 3 + written.count: return "check after promotion"
        default: return "done"
        }
    }

    private static func describe(_ step: StrategySpec.Step) -> String {
        switch step {
        case .setWeight(let weight): "setWeight \(weight)%"
        case .pause(nil): "pause"
        case .pause(let seconds?): "pause \(ManifestDuration.format(seconds))"
        case .analysis(let name): "analysis \(name)"
        }
    }
}
