import Foundation

/// Bring the candidate up beside stable (the preview), switch all traffic at once, keep the old side for a while
/// so switching back is instant.
public struct BlueGreenStrategy: DecodableStrategy {
    public static let type = StrategyType.blueGreen
    public static let fields = [
        "previewAnalysis", "postPromotionAnalysis", "autoPromotion", "autoPromotionAfter", "scaleDownDelay",
        "abortScaleDownDelay",
    ]

    /// Analysis of the preview (candidate up, no traffic) before the switch.
    public var previewAnalysis: String?
    /// Analysis after the switch, while the old side is still up.
    public var postPromotionAnalysis: String?
    /// Switch without a person (after `autoPromotionAfter`); false waits for `tide promote`.
    public var autoPromotion = true
    public var autoPromotionAfter: Double = 0
    /// How long the old side stays up after the switch.
    public var scaleDownDelay: Double = 30
    /// After an abort or a failure, how long the candidate keeps running once traffic is back on stable (nil: it
    /// goes with the rollback; 0: it is kept until the next rollout). Argo Rollouts' `abortScaleDownDelay`.
    public var abortScaleDownDelay: Double?

    public init() {}

    public var analyses: [String] { [previewAnalysis, postPromotionAnalysis].compactMap { $0 } }
    public var spec: StrategySpec { .blueGreen(self) }

    static func decode(_ fields: FieldMap, service: String, reader: inout NodeReader) -> Self? {
        var strategy = Self()
        strategy.previewAnalysis = fields["previewAnalysis"].flatMap { reader.name($0) }
        strategy.postPromotionAnalysis = fields["postPromotionAnalysis"].flatMap { reader.name($0) }
        if let value = fields["autoPromotion"].flatMap({ reader.bool($0) }) { strategy.autoPromotion = value }
        if let after = fields["autoPromotionAfter"].flatMap({ reader.duration($0) }) {
            strategy.autoPromotionAfter = after
            if !strategy.autoPromotion, let key = fields.key("autoPromotionAfter") {
                reader.error(key, "has no effect with autoPromotion: false")
            }
        }
        if let delay = fields["scaleDownDelay"].flatMap({ reader.duration($0) }) { strategy.scaleDownDelay = delay }
        strategy.abortScaleDownDelay = fields["abortScaleDownDelay"].flatMap { reader.duration($0) }
        return strategy
    }
}
