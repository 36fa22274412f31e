import Foundation

/// Walk traffic over to the candidate in steps of weights, pauses and analyses, with an optional analysis that
/// runs beside the steps for the whole rollout. Weights may go down as well as up (as in Argo Rollouts): a step
/// back to a smaller share is how a canary holds traffic low again after a burst.
public struct CanaryStrategy: DecodableStrategy {
    public static let type = StrategyType.canary
    public static let fields = ["steps", "backgroundAnalysis", "abortScaleDownDelay"]

    /// One step of the walk.
    public enum Step: Sendable, Hashable, Codable {
        /// Send this share (0–100) of traffic to the candidate.
        case setWeight(Int)
        /// Wait this many seconds, or (nil) until `tide promote`.
        case pause(Double?)
        /// Run the named Analysis; its verdict decides go, pause or roll back.
        case analysis(String)
    }

    public var steps: [Step]
    /// An analysis that runs for the whole rollout, beside the steps.
    public var backgroundAnalysis: String?
    /// Analyses written inline in steps, named `SERVICE/step-N`.
    public var inlineAnalyses: [AnalysisManifest] = []
    /// After an abort or a failure, how long the candidate keeps running once traffic is back on stable (nil: it
    /// goes with the rollback; 0: it is kept until the next rollout). Argo Rollouts' `abortScaleDownDelay`.
    public var abortScaleDownDelay: Double?

    public init(steps: [Step], backgroundAnalysis: String? = nil) {
        self.steps = steps
        self.backgroundAnalysis = backgroundAnalysis
    }

    public var analyses: [String] {
        var names: [String] = []
        for case .analysis(let name) in steps { names.append(name) }
        return names + [backgroundAnalysis].compactMap { $0 }
    }

    public var spec: StrategySpec { .canary(self) }

    static func decode(_ fields: FieldMap, service: String, reader: inout NodeReader) -> Self? {
        let background = fields["backgroundAnalysis"].flatMap { reader.name($0) }
        guard let stepsField = fields["steps"] else {
            reader.error(fields.field, "a canary needs steps (setWeight, pause, analysis)")
            return nil
        }
        guard let items = stepsField.items else {
            reader.error(stepsField, "expected a list, found \(reader.describe(stepsField.node))")
            return nil
        }
        guard !items.isEmpty else {
            reader.error(stepsField, "list at least one step")
            return nil
        }
        var strategy = Self(steps: [], backgroundAnalysis: background)
        strategy.abortScaleDownDelay = fields["abortScaleDownDelay"].flatMap { reader.duration($0) }
        let before = reader.diagnostics.count
        for (index, item) in items.enumerated() {
            strategy.decodeStep(item, number: index + 1, service: service, reader: &reader)
        }
        return reader.diagnostics.count == before ? strategy : nil
    }

    /// One of `setWeight: N`, `pause: DURATION` (or `{}` / `{duration: D}`), `analysis: NAME` (or inline).
    private mutating func decodeStep(_ item: Field, number: Int, service: String, reader: inout NodeReader) {
        guard case .mapping(let mapping) = item.node, mapping.count == 1, let (key, value) = mapping.first,
            let kind = key.string
        else {
            reader.error(item, "each step is one of setWeight: N, pause: DURATION or analysis: NAME")
            return
        }
        let field = item.child(kind, value)
        switch kind {
        case "setWeight":
            guard let text = reader.string(field) else { return }
            guard let weight = Int(text), (0...100).contains(weight) else {
                reader.error(field, "expected a whole number from 0 to 100")
                return
            }
            steps.append(.setWeight(weight))
        case "pause":
            if case .scalar = value, value.tagName == .null {
                steps.append(.pause(nil))
            } else if case .mapping(let pause) = value {
                if pause.count == 0 {
                    steps.append(.pause(nil))
                } else if let map = reader.fields(field, allowed: ["duration"], required: ["duration"]),
                    let seconds = map["duration"].flatMap({ reader.duration($0) })
                {
                    steps.append(.pause(seconds))
                }
            } else if let seconds = reader.duration(field) {
                steps.append(.pause(seconds))
            }
        case "analysis":
            if case .mapping = value {
                let name = "\(service)/step-\(number)"
                if let analysis = reader.analysis(field, name: name, at: reader.location(value)) {
                    inlineAnalyses.append(analysis)
                    steps.append(.analysis(name))
                }
            } else if let name = reader.name(field) {
                steps.append(.analysis(name))
            }
        default:
            let hint = reader.closest(kind, in: ["setWeight", "pause", "analysis"]).map { "; did you mean '\($0)'?" }
            reader.error(item.at(key), "unknown step '\(kind)'\(hint ?? "")")
        }
    }
}
