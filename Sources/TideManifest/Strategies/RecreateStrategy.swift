import Foundation

/// Stop old, start new. The stable version does not survive the deploy, so a failure goes back to it only with
/// `rollback.automatic`.
public struct RecreateStrategy: DecodableStrategy {
    public static let type = StrategyType.recreate
    public static let fields: [String] = []

    public init() {}

    public var analyses: [String] { [] }
    public var spec: StrategySpec { .recreate(self) }

    static func decode(_ fields: FieldMap, service: String, reader: inout NodeReader) -> Self? { Self() }
}
