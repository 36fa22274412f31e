public import TideMetrics

/// What `tide dora --json` prints (and the service answers): the window's report, its keys at the top level, and
/// the window before it under `previous`.
public struct DoraDocument: Encodable, Sendable {
    public var report: DoraReport
    public var previous: DoraReport

    public init(report: DoraReport, previous: DoraReport) {
        self.report = report
        self.previous = previous
    }

    public func encode(to encoder: any Encoder) throws {
        try report.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(previous, forKey: .previous)
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
        static let previous = Key(stringValue: "previous")
    }
}
