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
                  config: {a: 0x1F, b: 1_000, c: 1.5e3, d: yes, e: "yes", f: ~, g: 1:30, h: 1.4.2}
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
                    "a": .int(31), "b": .int(1000), "c": .double(1500), "d": .bool(true), "e": .string("yes"),
                    "f": .null, "g": .int(90), "h": .string("1.4.2"),
                ]))
        #expect(service.rollback.automatic)
    }
}
