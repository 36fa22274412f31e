import Foundation
import Testing
import TideTestSupport

@testable import TideManifest

/// The manifest decoder reads libyaml's event stream itself (`YAMLComposer`); before, Yams built the trees and
/// `YAMLGuard` walked the events a second time. `DecoderGolden/answers.txt` holds, for every input of the
/// bad-input corpus, the good corpus, the examples and the fuzz corpus, a digest of what the Yams decoder
/// answered (documents, diagnostics, the names of broken documents), recorded at b66a7cb, before it was removed:
/// the new decoder must answer the same, byte for byte. An answer that had to change is named here, with the
/// reason, and re-recorded (`TIDE_RECORD_DECODER_ANSWERS=1 swift test --filter DecoderEquivalence`):
///
/// - `Corpus/bad/259-nesting-10000-unclosed.yaml` and one fuzz input that open thousands of flow lists on one
///   line: Yams' bundled libyaml stopped scanning at its own limit (1,000 levels) before the guard saw the 257th
///   level, and the earlier documents were decoded; Debian's libyaml has no such limit, so the guard's limit
///   refuses the file, at the bracket that opens level 257 — as every other hostile construct is refused.
/// - two fuzz inputs with a NUL after a carriage return: an unreadable character's column was counted in
///   Characters (a CRLF is one) and used as Unicode scalars, one too small; now in scalars, as every other mark.
///
/// Not in any corpus, and different because Debian's libyaml 0.2.5 lacks two later upstream fixes that Yams'
/// copy had ("closing flow sequence after explicit key"): `labels: [?]` is a syntax error now (it was a list
/// holding a mapping from an empty key to null), and `a: [ ? ] ]` is read where it was refused.
@Suite("TideManifest: the event-stream decoder answers as the Yams decoder did, on every corpus input")
struct DecoderEquivalenceTests {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let root = tests.deletingLastPathComponent().deletingLastPathComponent()
    static let answers = tests.appendingPathComponent("DecoderGolden/answers.txt")

    /// Every input, named relative to the repository root.
    static func inputs() -> [String] {
        var names: [String] = []
        func walk(_ directory: String, keep: (String) -> Bool) {
            let base = root.appendingPathComponent(directory)
            guard let enumerator = FileManager.default.enumerator(atPath: base.path) else { return }
            for case let name as String in enumerator where keep(name) {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(
                    atPath: base.appendingPathComponent(name).path, isDirectory: &isDirectory),
                    !isDirectory.boolValue
                {
                    names.append(directory + "/" + name)
                }
            }
        }
        walk("Tests/TideManifestTests/Corpus") { $0.hasSuffix(".yaml") }
        walk("examples") { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
        walk("Fuzz/corpus/manifest") { _ in true }
        return names.sorted()
    }

    /// What the decoder answers for one input, in a form that does not depend on hashing order.
    static func answer(_ bytes: [UInt8]) -> String {
        let text = String(decoding: ManifestLoader.withoutByteOrderMark(bytes), as: UTF8.self)
        let result = ManifestDecoder.decodeNamingBroken(file: "case.yaml", text: text)
        return "documents: " + Canonical.render(result.documents) + "\ndiagnostics: "
            + result.diagnostics.map(\.description).joined(separator: "\n") + "\nbroken: "
            + result.broken.sorted().joined(separator: ",")
    }

    static func digest(_ answer: String) -> String { DesiredTarget.digest(of: .string(answer)) }

    @Test("every input: the same documents, diagnostics and broken names as the Yams decoder")
    func sameAnswers() throws {
        let inputs = Self.inputs()
        #expect(inputs.count > 1_800, "\(inputs.count) inputs")
        var lines: [String] = []
        for input in inputs {
            let bytes = Array(try Data(contentsOf: Self.root.appendingPathComponent(input)))
            lines.append("\(input) \(Self.digest(Self.answer(bytes)))")
        }
        if ProcessInfo.processInfo.environment["TIDE_RECORD_DECODER_ANSWERS"] != nil {
            try (lines.joined(separator: "\n") + "\n").write(to: Self.answers, atomically: true, encoding: .utf8)
            if let dump = ProcessInfo.processInfo.environment["TIDE_DUMP_DECODER_ANSWERS"] {
                var all = ""
                for input in inputs {
                    let bytes = Array(try Data(contentsOf: Self.root.appendingPathComponent(input)))
                    all += "=== \(input)\n\(Self.answer(bytes))\n"
                }
                try all.write(toFile: dump, atomically: true, encoding: .utf8)
            }
            return
        }
        let recorded = try String(contentsOf: Self.answers, encoding: .utf8).split(separator: "\n").map(String.init)
        var expected: [String: String] = [:]
        for line in recorded {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            if parts.count == 2 { expected[parts[0]] = parts[1] }
        }
        var differing: [String] = []
        for line in lines {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            if expected[parts[0]] != parts[1] { differing.append(parts[0]) }
        }
        #expect(Set(expected.keys) == Set(inputs), "inputs added or removed: re-record the answers")
        for name in differing.prefix(5) {
            let bytes = Array(try Data(contentsOf: Self.root.appendingPathComponent(name)))
            Issue.record("\(name) is answered differently now:\n\(Self.answer(bytes))")
        }
        #expect(differing.isEmpty, "\(differing.count) inputs answered differently: \(differing.prefix(20))")
    }
}

/// A rendering of any value that is the same in every process: dictionaries and sets in sorted order.
enum Canonical {
    static func render(_ value: Any) -> String {
        let mirror = Mirror(reflecting: value)
        let type = String(describing: mirror.subjectType)
        switch mirror.displayStyle {
        case .optional:
            return mirror.children.first.map { render($0.value) } ?? "nil"
        case .dictionary:
            let pairs = mirror.children.map { child -> String in
                let pair = Mirror(reflecting: child.value).children.map { render($0.value) }
                return pair.joined(separator: ": ")
            }
            return "[" + pairs.sorted().joined(separator: ", ") + "]"
        case .set:
            return "{" + mirror.children.map { render($0.value) }.sorted().joined(separator: ", ") + "}"
        case .collection:
            return "[" + mirror.children.map { render($0.value) }.joined(separator: ", ") + "]"
        case .enum:
            guard let payload = mirror.children.first else { return "\(type).\(value)" }
            return "\(type).\(payload.label ?? "?")(\(render(payload.value)))"
        case .struct, .class, .tuple:
            let fields = mirror.children.map { "\($0.label ?? "_")=\(render($0.value))" }
            return "\(type)(" + fields.joined(separator: " ") + ")"
        default:
            if let text = value as? String { return String(reflecting: text) }
            return String(describing: value)
        }
    }
}
