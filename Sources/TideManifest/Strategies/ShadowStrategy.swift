import Foundation

/// Mirror traffic to the candidate (its answers are discarded) for a while; an analysis decides promote or
/// discard.
public struct ShadowStrategy: DecodableStrategy {
    public static let type = StrategyType.shadow
    public static let fields = ["mirror", "duration", "analysis"]

    /// Share of traffic mirrored to the candidate.
    public var mirror = 100
    /// How long to mirror before the analysis decides.
    public var duration: Double = 0
    /// The analysis that decides.
    public var analysis: String

    public init(analysis: String, mirror: Int = 100, duration: Double = 0) {
        self.analysis = analysis
        self.mirror = mirror
        self.duration = duration
    }

    public var analyses: [String] { [analysis] }
    public var spec: StrategySpec { .shadow(self) }

    static func decode(_ fields: FieldMap, service: String, reader: inout NodeReader) -> Self? {
        let mirror = fields["mirror"].flatMap { reader.percent($0, minimum: 1) } ?? 100
        let duration = fields["duration"].flatMap { reader.duration($0) } ?? 0
        guard let field = fields["analysis"] else {
            reader.error(fields.field, "a shadow strategy needs an analysis to decide promote or discard")
            return nil
        }
        return reader.name(field).map { Self(analysis: $0, mirror: mirror, duration: duration) }
    }
}
