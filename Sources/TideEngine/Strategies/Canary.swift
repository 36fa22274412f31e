public import TideManifest
public import TideState

/// canary: deploy at 0 %, health, the manifest's steps (numbered as written), promote, health; the background
/// analysis runs beside them.
extension CanaryStrategy: RolloutStrategy {
    public static let rank = 3
    public var name: StrategyType { Self.type }

    public var plannedSteps: [PlannedStep] {
        let walk = steps.enumerated().map { index, step -> PlannedStep in
            let planned: RolloutStep =
                switch step {
                case .setWeight(let weight): .action(.setWeight, weight: weight)
                case .pause(let seconds): .pause(seconds)
                case .analysis(let name): .analysis(name)
                }
            return PlannedStep(planned, label: "step \(index + 1)/\(steps.count): " + Self.describe(step))
        }
        let candidate = Self.candidate
        let promotion = Self.promotion
        return [
            PlannedStep(candidate[0], label: "deploy the candidate"),
            PlannedStep(candidate[1], label: "check the candidate"),
        ] + walk + [
            PlannedStep(promotion[0], label: "promote"), PlannedStep(promotion[1], label: "check after promotion"),
        ]
    }

    /// As the user wrote it: `setWeight 10%`, `pause 5m`, `pause`, `analysis NAME`.
    static func describe(_ step: Step) -> String {
        switch step {
        case .setWeight(let weight): "setWeight \(weight)%"
        case .pause(nil): "pause"
        case .pause(let seconds?): "pause \(ManifestDuration.format(seconds))"
        case .analysis(let name): "analysis \(name)"
        }
    }
}
