public import TideManifest
public import TideState

/// ab: deploy, health, split (the requests that match go to the candidate: its weight is the bucket share of a
/// userKey match, 0 for a header or cookie match, whose share depends on the requests), wait `duration`, analysis
/// (the comparison); promote, health. Ranks as a canary.
extension ABStrategy: RolloutStrategy {
    public static let rank = CanaryStrategy.rank
    public var name: StrategyType { Self.type }

    public var plannedSteps: [PlannedStep] {
        var steps = Self.candidate
        steps.append(.action(.split, weight: match.share ?? 0, traffic: .object(["match": match.json])))
        if duration > 0 { steps.append(.pause(duration)) }
        steps.append(.analysis(analysis))
        return Self.numbered(steps + Self.promotion)
    }
}
