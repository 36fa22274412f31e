import Testing
import Yams

@testable import TideManifest

@Suite struct ScalarResolverTests {
    /// Tide types plain scalars without regular expressions; it must agree with Yams' default (regex) resolver
    /// on every kind of scalar YAML 1.1 distinguishes, and on near misses.
    @Test(arguments: [
        "", "~", "null", "Null", "NULL", "nul", "yes", "No", "TRUE", "true", "False", "on", "OFF", "y", "n",
        "tRue", "0", "-0", "+7", "12", "1_000", "0b1010", "-0b1_0", "0b2", "017", "0o17", "0o8", "08", "0x1F",
        "0xg", "-0x_a", "1:30", "190:20:30", "1:60", "1:234", "0:30", "1.5", "1.", ".5", "-.5", "+.5", "1e5",
        "1.5e-3", "1e", ".5e+3", ".5e3", "1:30.5", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "-.nan", "1.2.3",
        "1.4.2", "v1.2", "<<", "=", "2026-11-22", "2026-1-2", "2026-1-2T3:04:05", "2026-11-22t10:00:00.5Z",
        "2026-11-22 10:00:00 +01:00", "2026-11-22  10:00:00-5", "2026-11-22T10:00:00 Z", "2026-11-2",
        "2026-11-22T1:2:3", "20261122", "5m", "500m", "256Mi", "a b", "-", "+", "_1", "1_", "0_1", "00",
    ])
    func agreesWithYams(_ text: String) throws {
        let yams = Resolver.default.resolveTag(of: Node(text, Yams.Tag(.implicit), .plain))
        let tide: Yams.Tag.Name =
            switch ScalarResolver.kind(of: text) {
            case .bool: .bool
            case .int: .int
            case .float: .float
            case .merge: .merge
            case .null: .null
            case .timestamp: .timestamp
            case .value: .value
            case .string: .str
            }
        #expect(tide == yams, "\(text)")
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
