public import TideManifest
public import TideState

/// rolling: deploy the first batch, health; set-weight (share of instances replaced) and health per batch;
/// promote, health.
extension RollingStrategy: RolloutStrategy {
    public static let rank = 1
    public var name: StrategyType { Self.type }

    public var plannedSteps: [PlannedStep] {
        let batches = batches.isEmpty ? [100] : batches
        var steps: [RolloutStep] = [.action(.deploy, weight: batches[0]), .action(.health, weight: batches[0])]
        for batch in batches.dropFirst() where batch < 100 {
            steps += [.action(.setWeight, weight: batch), .action(.health, weight: batch)]
        }
        return Self.numbered(steps + Self.promotion)
    }
}
