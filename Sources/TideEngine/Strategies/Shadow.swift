public import TideManifest
public import TideState

/// shadow: deploy, health, mirror (the candidate sees `mirror` % of the traffic as copies), wait `duration`,
/// analysis; promote, health. Tests the candidate on real traffic before it serves any, so it ranks as a canary.
extension ShadowStrategy: RolloutStrategy {
    public static let rank = CanaryStrategy.rank
    public var name: StrategyType { Self.type }

    public var plannedSteps: [PlannedStep] {
        var steps = Self.candidate
        steps.append(.action(.mirror, weight: mirror, traffic: .object(["mirror": .int(Int64(mirror))])))
        if duration > 0 { steps.append(.pause(duration)) }
        steps.append(.analysis(analysis))
        return Self.numbered(steps + Self.promotion)
    }
}
