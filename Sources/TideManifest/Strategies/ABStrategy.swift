import Foundation

/// Split traffic by a match (header, cookie, user bucket) for a while, then let an analysis compare.
public struct ABStrategy: DecodableStrategy {
    public static let type = StrategyType.ab
    public static let fields = ["match", "duration", "analysis"]

    /// Which requests an A/B split sends to the candidate.
    public enum Match: Sendable, Hashable {
        /// Requests whose header `name` equals `value`.
        case header(name: String, value: String)
        /// Requests whose cookie `name` equals `value`.
        case cookie(name: String, value: String)
        /// Users whose key (the value of header `header`) falls in the first `percent` of 100 buckets of the
        /// stable hash (see `TrafficSplit.bucket`).
        case userKey(header: String, percent: Int)

        /// As the executor receives it.
        public var json: JSONValue {
            switch self {
            case .header(let name, let value):
                .object(["header": .object(["name": .string(name), "value": .string(value)])])
            case .cookie(let name, let value):
                .object(["cookie": .object(["name": .string(name), "value": .string(value)])])
            case .userKey(let header, let percent):
                .object(["userKey": .object(["header": .string(header), "percent": .int(Int64(percent))])])
            }
        }

        /// The share of users the candidate sees: the bucket share for `userKey`; unknown (nil) for a header or
        /// cookie match, which depends on the requests.
        public var share: Int? {
            if case .userKey(_, let percent) = self { percent } else { nil }
        }
    }

    public var match: Match
    /// How long to split before the analysis decides.
    public var duration: Double
    public var analysis: String

    public init(match: Match, duration: Double, analysis: String) {
        self.match = match
        self.duration = duration
        self.analysis = analysis
    }

    public var analyses: [String] { [analysis] }
    public var spec: StrategySpec { .ab(self) }

    static func decode(_ fields: FieldMap, service: String, reader: inout NodeReader) -> Self? {
        var broken = false
        func need(_ name: String, _ why: String, reader: inout NodeReader) -> Field? {
            if let field = fields[name] { return field }
            reader.error(fields.field, why)
            broken = true
            return nil
        }
        let analysis = need(
            "analysis", "an ab strategy needs an analysis to decide promote or discard", reader: &reader
        )
        .flatMap { reader.name($0) }
        let match = need("match", "an ab strategy needs a match (header, cookie or userKey)", reader: &reader)
            .flatMap { decodeMatch($0, reader: &reader) }
        let duration = need("duration", "an ab strategy needs a duration (how long to split)", reader: &reader)
            .flatMap { reader.duration($0) }
        guard !broken, let analysis, let match, let duration else { return nil }
        return Self(match: match, duration: duration, analysis: analysis)
    }

    /// HTTP's token characters (RFC 9110), which header and cookie names are made of.
    static let token = CharacterSet(
        charactersIn: "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    static let tokenRule = "letters, digits and !#$%&'*+-.^_`|~"

    /// `match: {header: {name, value}}`, `{cookie: {name, value}}` or `{userKey: {header, percent}}`.
    static func decodeMatch(_ field: Field, reader: inout NodeReader) -> Match? {
        guard let map = reader.fields(field, allowed: ["header", "cookie", "userKey"]) else { return nil }
        guard map.entries.count == 1, let kind = map.names.first, let inner = map[kind] else {
            reader.error(field, "give exactly one of header, cookie or userKey")
            return nil
        }
        if kind == "userKey" {
            guard let h = reader.fields(inner, allowed: ["header", "percent"], required: ["header", "percent"]),
                let header = h["header"].flatMap({ reader.string($0) }),
                let share = h["percent"].flatMap({ reader.percent($0, minimum: 1) })
            else { return nil }
            guard !header.isEmpty, header.unicodeScalars.allSatisfy(Self.token.contains) else {
                h["header"].map {
                    reader.error($0, "'\(Diagnostic.printable(header))' is not a header name (\(Self.tokenRule))")
                }
                return nil
            }
            return .userKey(header: header, percent: share)
        }
        guard let h = reader.fields(inner, allowed: ["name", "value"], required: ["name", "value"]),
            let name = h["name"].flatMap({ reader.string($0) }), let value = h["value"].flatMap({ reader.string($0) })
        else { return nil }
        // The name becomes an HTTP header or cookie name in traffic configs (nginx's `$http_…`): a token only.
        guard !name.isEmpty, name.unicodeScalars.allSatisfy(Self.token.contains) else {
            h["name"].map {
                reader.error($0, "'\(Diagnostic.printable(name))' is not a \(kind) name (\(Self.tokenRule))")
            }
            return nil
        }
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            h["value"].map {
                reader.error($0, "the \(kind) value contains control characters (line breaks are refused)")
            }
            return nil
        }
        return kind == "header" ? .header(name: name, value: value) : .cookie(name: name, value: value)
    }
}
