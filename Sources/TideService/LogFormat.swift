import Foundation
public import Logging

/// How `tide run` writes its log lines to stderr: `text` for people (`2026-11-30T10:00:00Z info pass result=ok
/// …`), `json` for machines (one object per line). Nothing secret is ever passed to a logger.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json

    public func makeLogger(label: String = "tide", level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: label) { label in LineLogHandler(label: label, format: self) }
        logger.logLevel = level
        return logger
    }
}

struct LineLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let time = Date().formatted(.iso8601)
        let line: String
        switch format {
        case .json:
            var object: [String: Any] = [
                "time": time, "level": event.level.rawValue, "msg": event.message.description,
            ]
            for (key, value) in merged { object[key] = Self.unpack(value) }
            let data =
                (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
                ?? Data()
            line = String(decoding: data, as: UTF8.self)
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { key, value in
                "\(key)=\(Self.logfmt("\(value)"))"
            }
            line = ([time, event.level.rawValue, event.message.description] + fields).joined(separator: " ")
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// A logfmt value: bare when it is one plain word, else quoted with quotes, backslashes and control characters
    /// escaped, so one event is always one line.
    static func logfmt(_ text: String) -> String {
        let plain =
            !text.isEmpty
            && text.unicodeScalars.allSatisfy {
                $0.value > 0x20 && $0.value != 0x7f && !"\"=\\".unicodeScalars.contains($0)
            }
        guard !plain else { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                out +=
                    scalar.value < 0x20 || scalar.value == 0x7f
                    ? String(format: "\\u%04x", scalar.value) : String(scalar)
            }
        }
        return out + "\""
    }

    static func unpack(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(unpack)
        case .dictionary(let values): values.mapValues(unpack)
        }
    }
}
