public import TideManifest
public import TideState

/// blue-green: deploy the preview, health, preview analysis; wait (autoPromotionAfter, or for `tide promote`
/// without autoPromotion); promote (switch all traffic), health, post-promotion analysis; keep the old side for
/// scaleDownDelay; scale-down.
extension BlueGreenStrategy: RolloutStrategy {
    public static let rank = 2
    public var name: StrategyType { Self.type }

    public var plannedSteps: [PlannedStep] {
        var steps = Self.candidate
        if let previewAnalysis { steps.append(.analysis(previewAnalysis)) }
        if !autoPromotion {
            steps.append(.pause(nil))
        } else if autoPromotionAfter > 0 {
            steps.append(.pause(autoPromotionAfter))
        }
        steps += Self.promotion
        if let postPromotionAnalysis { steps.append(.analysis(postPromotionAnalysis)) }
        if scaleDownDelay > 0 { steps.append(.pause(scaleDownDelay)) }
        return Self.numbered(steps + [.action(.scaleDown, weight: 100)])
    }
}
