import Foundation

/// Replace instances in batches, with a health check between batches.
public struct RollingStrategy: DecodableStrategy {
    public static let type = StrategyType.rolling
    public static let fields = ["batches", "maxSurge", "maxUnavailable"]

    /// Cumulative share of instances replaced after each batch; the last is 100.
    public var batches: [Int]

    public init(batches: [Int] = [25, 50, 75, 100]) {
        self.batches = batches
    }

    public var analyses: [String] { [] }
    public var spec: StrategySpec { .rolling(self) }

    /// `batches: [25%, 50%, 100%]`, or batches of `max(maxSurge, maxUnavailable)` (both default 25 %).
    static func decode(_ fields: FieldMap, service: String, reader: inout NodeReader) -> Self? {
        if let field = fields["batches"] {
            if let other = fields.key("maxSurge") ?? fields.key("maxUnavailable") {
                reader.error(other, "give either batches or maxSurge/maxUnavailable, not both")
            }
            guard let items = field.items, !items.isEmpty else {
                reader.error(field, "expected a list of percentages ending at 100%")
                return nil
            }
            var batches: [Int] = []
            for item in items {
                guard let value = reader.percent(item, minimum: 1) else { return nil }
                if let last = batches.last, value <= last {
                    reader.error(item, "\(value)% is not above the batch before (\(last)%)")
                }
                batches.append(value)
            }
            if let last = batches.last, last != 100 {
                reader.error(field.at(items[items.count - 1].node), "the last batch must be 100%, not \(last)%")
                return nil
            }
            return Self(batches: batches)
        }
        let surge = fields["maxSurge"].flatMap { share($0, reader: &reader) } ?? 25
        let unavailable = fields["maxUnavailable"].flatMap { share($0, reader: &reader) } ?? 25
        let step = max(surge, unavailable)
        guard step > 0 else {
            reader.error(fields.field, "maxSurge and maxUnavailable cannot both be 0%")
            return nil
        }
        return Self(batches: Array(stride(from: step, to: 100, by: step)) + [100])
    }

    /// `maxSurge`/`maxUnavailable` as a share of instances. Argo Rollouts also takes a count of pods (`maxSurge: 1`),
    /// but Tide's executors do not report how many instances run, so a count cannot be turned into batches: it is
    /// refused rather than read as a percentage.
    private static func share(_ field: Field, reader: inout NodeReader) -> Int? {
        guard let text = reader.string(field) else { return nil }
        guard text.hasSuffix("%") || text == "0" else {
            reader.error(
                field,
                "'\(text)' is a count of instances, which Tide cannot turn into batches (its executors do not "
                    + "report how many run): write a percentage such as 25%, or give batches")
            return nil
        }
        return reader.percent(field)
    }
}
