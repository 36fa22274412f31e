public import TideManifest
public import TideState

/// recreate: deploy (stop old, start new), health.
extension RecreateStrategy: RolloutStrategy {
    public static let rank = 0
    public var name: StrategyType { Self.type }
    public var keepsStable: Bool { false }
    public var plannedSteps: [PlannedStep] {
        Self.numbered([.action(.deploy, weight: 100), .action(.health, weight: 100)])
    }
}
