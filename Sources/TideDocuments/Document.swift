public import Foundation

/// How every document is written: JSON with sorted keys, ISO 8601 dates, pretty-printed and slashes unescaped —
/// the same bytes from `tide … --json` and from the service.
public enum Document {
    public static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// A time as documents and tables print it (`2026-11-02T10:00:00Z`), or "-" for none.
    public static func iso(_ date: Date?) -> String {
        guard let date else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
