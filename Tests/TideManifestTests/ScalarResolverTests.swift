import Foundation
import Testing

@testable import TideManifest

@Suite struct ScalarResolverTests {
    /// YAML 1.1's implicit typing as regular expressions, in the order they are tried: the rules of the YAML 1.1
    /// type repository (yaml.org/type) as PyYAML and Yams' default resolver write them. Tide types plain scalars
    /// without regular expressions; it must agree with these on every kind of scalar and on near misses.
    static let rules: [(ScalarResolver.Kind, String)] = [
        (.bool, "^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"),
        (
            .int,
            "^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
                + "|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$"
        ),
        (
            .float,
            "^(?:[-+]?(?:[0-9][0-9_]*)(?:\\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\\.[0-9_]+(?:[eE][-+][0-9]+)?"
                + "|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$"
        ),
        (.merge, "^(?:<<)$"),
        (.null, "^(?:~|null|Null|NULL|)$"),
        (
            .timestamp,
            "^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
                + "(?:[Tt]|[ \\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\\.[0-9]*)?"
                + "(?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"
        ),
        (.value, "^(?:=)$"),
    ]

    /// The kind the first matching rule gives `text` (`.string` when none does).
    static func regexKind(of text: String) throws -> ScalarResolver.Kind {
        for (kind, pattern) in rules {
            let expression = try NSRegularExpression(pattern: pattern)
            if expression.firstMatch(in: text, range: NSRange(location: 0, length: text.utf16.count)) != nil {
                return kind
            }
        }
        return .string
    }
    @Test(arguments: [
        "", "~", "null", "Null", "NULL", "nul", "yes", "No", "TRUE", "true", "False", "on", "OFF", "y", "n",
        "tRue", "0", "-0", "+7", "12", "1_000", "0b1010", "-0b1_0", "0b2", "017", "0o17", "0o8", "08", "0x1F",
        "0xg", "-0x_a", "1:30", "190:20:30", "1:60", "1:234", "0:30", "1.5", "1.", ".5", "-.5", "+.5", "1e5",
        "1.5e-3", "1e", ".5e+3", ".5e3", "1:30.5", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "-.nan", "1.2.3",
        "1.4.2", "v1.2", "<<", "=", "2026-11-22", "2026-1-2", "2026-1-2T3:04:05", "2026-11-22t10:00:00.5Z",
        "2026-11-22 10:00:00 +01:00", "2026-11-22  10:00:00-5", "2026-11-22T10:00:00 Z", "2026-11-2",
        "2026-11-22T1:2:3", "20261122", "5m", "500m", "256Mi", "a b", "-", "+", "_1", "1_", "0_1", "00",
    ])
    func agreesWithTheRegularExpressions(_ text: String) throws {
        #expect(ScalarResolver.kind(of: text) == (try Self.regexKind(of: text)), "\(text)")
    }

    @Test func valuesOfTypedScalars() throws {
        let (documents, diagnostics) = ManifestDecoder.decode(
            file: "s.yaml",
            text: """
                apiVersion: tide/v1
                kind: Service
                metadata: {name: s}
                spec:
                  executor: e
                  version: "1"
                  config: {a: 0x1F, c: 1.5e3, e: "yes", f: ~, h: 1.4.2, i: "1_000", j: "017"}
                  environments: {prod: {}}
                  rollback: {automatic: on}
                """)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        guard case .service(let service) = documents.first else {
            Issue.record("no service")
            return
        }
        #expect(
            service.config
                == .object([
                    "a": .int(31), "c": .double(1500), "e": .string("yes"), "f": .null, "h": .string("1.4.2"),
                    "i": .string("1_000"), "j": .string("017"),
                ]))
        #expect(service.rollback.automatic)
    }

    /// Hardening round two, 15: what YAML 1.1 reads otherwise than a person does is refused in config, at its
    /// place, with how YAML 1.1 would read it (it used to reach the executor as 1000, true, 90, 15, 5).
    @Test(
        arguments: [
            ("1_000", "a number with its underscores dropped"), ("yes", "a boolean (true)"),
            ("Off", "a boolean (false)"), ("1:30", "a number in base 60"), ("017", "an octal number"),
            ("0o17", "an octal number"), ("0b101", "a binary number"), ("-017", "an octal number"),
            ("09", "a number without its leading zero"),
        ])
    func yaml11OnlyFormsRefused(_ text: String, _ reading: String) {
        let (_, diagnostics) = ManifestDecoder.decode(
            file: "s.yaml",
            text: """
                apiVersion: tide/v1
                kind: Service
                metadata: {name: s}
                spec:
                  executor: e
                  version: "1"
                  config: {v: \(text)}
                  environments: {prod: {}}
                """)
        #expect(diagnostics.count == 1, "\(diagnostics)")
        #expect(
            diagnostics.first?.message
                == "Service 's': spec.config.v: '\(text)' is read by YAML 1.1 as \(reading); quote it (\"\(text)\") "
                + "for the text, or write the value you mean plainly (true, false, 15)", "\(diagnostics)")
        #expect(diagnostics.first?.location.line == 7 && diagnostics.first?.location.column == 15)
    }

}
