import Foundation
import Testing

@testable import TideManifest

/// YAML that would have the decoder walk an exponential tree, nest without bound, or quietly drop what the
/// author wrote is refused with the place it is written, as `YAMLComposer` reads the events.
@Suite("TideManifest: alias bombs, deep nesting and unknown tags are refused")
struct YAMLGuardTests {
    static let service = """
        apiVersion: tide/v1
        kind: Service
        metadata: {name: api}
        spec:
          executor: local
          version: "1"
          environments: {prod: {}}

        """

    /// Ten levels of ten aliases each: 10¹⁰ values once expanded.
    static func bomb(levels: Int = 10, indent: String = "    ") -> String {
        var lines = ["\(indent)l0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1..<levels {
            let items = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            lines.append("\(indent)l\(level): &a\(level) [\(items)]")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func decode(_ text: String) -> [Diagnostic] {
        ManifestDecoder.decode(file: "api.yaml", text: text).diagnostics
    }

    @Test(
        "a character YAML may not hold is reported where it is, in Unicode scalars, after a CRLF or a combining mark",
        arguments: [("a: 1\r\nb: \u{1}\n", 2, 4), ("a: e\u{301}\u{1}\n", 1, 6), ("a: 😀 \u{7F}\n", 1, 6)])
    func unreadableCharacter(_ text: String, _ line: Int, _ column: Int) throws {
        let diagnostics = decode(text)
        let match = try #require(diagnostics.first { $0.message.hasPrefix("unreadable YAML: ") }, "\(diagnostics)")
        #expect(match.location.line == line && match.location.column == column, "\(match)")
    }

    @Test("an alias bomb under spec.config is refused at the alias that crosses the limit, at once")
    func configBomb() throws {
        let text = Self.service + "  config:\n" + Self.bomb()
        let started = ContinuousClock.now
        let diagnostics = decode(text)
        #expect(ContinuousClock.now - started < .seconds(5))
        let match = try #require(diagnostics.first { $0.message.contains("YAML aliases expand to more than 100000") })
        #expect(match.location.file == "api.yaml")
        #expect(match.location.line == 13, "\(match)")  // l4: 11 + 110 + 1,110 + 11,110 + 111,110 nodes
    }

    @Test("'? *alias : 1' keys and list or mapping keys (they would be compared as whole trees) are refused")
    func keyBomb() throws {
        let text = "x:\n" + Self.bomb(levels: 3, indent: "  ") + "y:\n  ? *a2\n  : 1\n  ? *a2\n  : 2\n"
        let diagnostics = decode(text)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.message == "a mapping key must be a plain value, not an alias", "\(diagnostics)")
        #expect(diagnostics.first?.location.line == 6)
        // 32 pairs of equal nested-list keys, no alias at all: sorting them to report duplicates is exponential.
        let nested: String = (1..<33).map { (depth: Int) -> String in
            let key = String(repeating: "[", count: depth) + "x" + String(repeating: "]", count: depth)
            return "  ? \(key)\n  : 1\n  ? \(key)\n  : 2\n"
        }.joined()
        let started = ContinuousClock.now
        let refused = decode("c:\n\(nested)")
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(refused.first?.message == "a mapping key must be a plain value, not a list", "\(refused)")
        #expect(decode("c: {? {a: 1} : 1}\n").first?.message == "a mapping key must be a plain value, not a mapping")
    }

    @Test("aliases of long text: 10 MiB of expanded text is the limit, whatever the count")
    func textBomb() throws {
        let long = String(repeating: "x", count: 10_000)
        let text: String =
            "a: &big \"\(long)\"\nb: [" + Array(repeating: "*big", count: 2_000).joined(separator: ", ") + "]\n"
        let started = ContinuousClock.now
        let diagnostics = decode(text)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(diagnostics.first?.message.contains("MiB of text") == true, "\(diagnostics.prefix(1))")
    }

    @Test("ordinary aliases still work, across documents too")
    func ordinaryAliases() {
        let text = """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: api}
            spec:
              executor: local
              version: "1"
              config: &shared {replicas: 3, limits: [1, 2, 3]}
              environments:
                prod: {config: *shared}

            """
        #expect(decode(text).isEmpty, "\(decode(text))")
        // Anchors are kept from one document to the next, so their expansion counts across the file.
        let twoDocuments =
            "x:\n" + Self.bomb(levels: 4, indent: "  ") + "---\ny: [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]\n"
        #expect(
            decode(twoDocuments).contains { $0.message.contains("YAML aliases expand to more than") },
            "\(decode(twoDocuments))")
    }

    @Test("nesting deeper than 256 is refused with its place; libyaml's own limit of 1000 is worded plainly")
    func nesting() throws {
        for depth in [300, 5_000] {
            let text =
                Self.service + "  config: " + String(repeating: "[", count: depth)
                + String(repeating: "]", count: depth) + "\n"
            let diagnostics = decode(text)
            let match = try #require(diagnostics.first { $0.message.contains("nested more than") }, "\(diagnostics)")
            #expect(match.location.line == 8)
        }
    }

    @Test(
        "unknown tags are errors, never dropped",
        arguments: [
            ("!secret hunter2", "unknown YAML tag '!secret'"),
            ("!!python/object:os.system x", "unknown YAML tag '!!python/object:os.system'"),
            ("!<tag:example.com,2000:app/foo> x", "unknown YAML tag 'tag:example.com,2000:app/foo'"),
            ("!!binary aGk=", "unknown YAML tag '!!binary'"),
            ("!!set {a, b}", "unknown YAML tag '!!set'"),
            ("!custom [1, 2]", "unknown YAML tag '!custom'"),
            ("!e%1B%07 x", "unknown YAML tag '!e\\u{1b}\\u{7}'"),
        ])
    func unknownTags(_ value: String, _ message: String) throws {
        let text = Self.service + "  config: {a: \(value)}\n"
        let diagnostics = decode(text)
        let match = try #require(diagnostics.first { $0.message.contains(message) }, "\(diagnostics)")
        #expect(match.location.line == 8)
        #expect(!match.description.contains("\u{1b}"))
    }

    @Test(
        "a NEL, LS or PS is refused: YAML breaks the line there, a reviewer sees a comment (hardening round two, 14)",
        arguments: ["\u{85}", "\u{2028}", "\u{2029}", "\r"])
    func hiddenLineBreaks(_ character: String) throws {
        // What a review shows as one comment line; YAML (before the guard) read `version: "6.6.6"` as a key.
        let text = Self.service + "  # pinned, do not change\(character)  version: \"6.6.6\"\n"
        let diagnostics = decode(text)
        let match = try #require(
            diagnostics.first { $0.message.contains("is a line break for YAML") }, "\(diagnostics)")
        #expect(match.location.line == 8)
        #expect(match.location.column == 26)
        #expect(diagnostics.count == 1)
        // Escaped in a double-quoted string, it is a character like any other.
        let escaped = Self.service + "  config: {note: \"a\\Lb\"}\n"
        #expect(decode(escaped).isEmpty, "\(decode(escaped))")
    }

    @Test("standard tags are accepted")
    func standardTags() {
        let text =
            Self.service + "  config: {a: !!str 5, b: !!int 7, c: !!float 1.5, d: !!bool true, e: !!null ~, "
            + "f: !!seq [1], g: !!map {x: 1}, h: ! plain}\n"
        #expect(decode(text).isEmpty, "\(decode(text))")
    }

    @Test("control characters in file names and quoted values are escaped wherever a diagnostic is printed")
    func controlCharacters() {
        let location = SourceLocation(file: "evil\u{1b}[2J\u{202e}.yaml", line: 3, column: 4)
        let diagnostic = Diagnostic(location, "found '\u{7}bell\u{9b}31m'")
        #expect(diagnostic.description == "evil\\u{1b}[2J\\u{202e}.yaml:3:4: found '\\u{7}bell\\u{9b}31m'")
        #expect(Diagnostic.printable("naïve — ✓ 日本") == "naïve — ✓ 日本")
    }
}
