import Foundation

/// The name of a strategy, as written in `spec.strategy.type` and sent as `TIDE_STRATEGY`.
public enum StrategyType: String, Sendable, Hashable, Codable, CaseIterable {
    case recreate
    case rolling
    case blueGreen = "blue-green"
    case canary
    case shadow
    case ab
}

/// What every strategy tells the manifest layer: its name, the fields it takes, the analyses it names.
///
/// Adding a strategy: one file here (a type conforming to `DecodableStrategy`, with its fields and decoding), a
/// case in `StrategySpec` with its line in `definition` and `decoders`, one file in TideEngine/Strategies (its
/// steps), and a test file.
public protocol StrategyDefinition: Sendable, Hashable {
    static var type: StrategyType { get }
    /// The fields it takes besides `type`.
    static var fields: [String] { get }
    /// Every Analysis it names (steps, background, preview…).
    var analyses: [String] { get }
    /// Analyses written inline (canary steps), named `SERVICE/step-N`.
    var inlineAnalyses: [AnalysisManifest] { get }
    /// Itself, wrapped.
    var spec: StrategySpec { get }
}

extension StrategyDefinition {
    public var inlineAnalyses: [AnalysisManifest] { [] }
}

/// A strategy that reads itself from `spec.strategy`.
protocol DecodableStrategy: StrategyDefinition {
    /// Decodes the strategy's fields (already checked against `fields`); nil when they are broken (diagnostics
    /// recorded).
    static func decode(_ fields: FieldMap, service: String, reader: inout NodeReader) -> Self?
}

/// How a new version replaces the running one: one case per strategy, each with its own fields.
public enum StrategySpec: Sendable, Hashable {
    case recreate(RecreateStrategy)
    case rolling(RollingStrategy)
    case blueGreen(BlueGreenStrategy)
    case canary(CanaryStrategy)
    case shadow(ShadowStrategy)
    case ab(ABStrategy)

    /// Recreate: what a Service without `strategy` gets, and what a first deployment runs.
    public init() { self = .recreate(RecreateStrategy()) }

    public var definition: any StrategyDefinition {
        switch self {
        case .recreate(let strategy): strategy
        case .rolling(let strategy): strategy
        case .blueGreen(let strategy): strategy
        case .canary(let strategy): strategy
        case .shadow(let strategy): strategy
        case .ab(let strategy): strategy
        }
    }

    /// Every strategy that `spec.strategy.type` can name, in the order they are listed to users.
    static let decoders: [any DecodableStrategy.Type] = [
        RecreateStrategy.self, RollingStrategy.self, BlueGreenStrategy.self, CanaryStrategy.self,
        ShadowStrategy.self, ABStrategy.self,
    ]

    public var type: StrategyType { Swift.type(of: definition).type }
    public var analyses: [String] { definition.analyses }
    public var inlineAnalyses: [AnalysisManifest] { definition.inlineAnalyses }
}

extension NodeReader {
    /// `spec.strategy`: `type` picks the strategy, which decodes the rest; a field of another strategy gets a
    /// message naming the strategies that have it.
    mutating func strategy(_ field: Field, service: String) -> StrategySpec? {
        let all = ["type"] + Set(StrategySpec.decoders.flatMap { $0.fields }).sorted()
        guard let map = fields(field, allowed: all, required: ["type"]), let typeField = map["type"],
            let type = oneOf(typeField, StrategyType.self),
            let decoder = StrategySpec.decoders.first(where: { $0.type == type })
        else { return nil }
        var clean = true
        for name in map.names where name != "type" && !decoder.fields.contains(name) {
            let owners = StrategySpec.decoders.filter { $0.fields.contains(name) }.map { $0.type.rawValue }
            guard let key = map.key(name) else { continue }
            error(key, "a \(type.rawValue) strategy has no '\(name)' (\(owners.joined(separator: ", ")) do)")
            clean = false
        }
        let decoded = decodeStrategy(decoder, map, service: service)
        return clean ? decoded : nil
    }

    private mutating func decodeStrategy<S: DecodableStrategy>(
        _: S.Type, _ map: FieldMap, service: String
    ) -> StrategySpec? {
        S.decode(map, service: service, reader: &self)?.spec
    }
}
