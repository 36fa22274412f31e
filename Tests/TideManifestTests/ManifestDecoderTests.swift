import Foundation
import Testing
import TideGit
import TideManifest
import TideTestSupport

let validExecutor = """
    apiVersion: tide/v1
    kind: Executor
    metadata: {name: local}
    spec:
      type: command
      command: ["/bin/true"]
    ---
    apiVersion: tide/v1
    kind: Environment
    metadata: {name: prod}
    spec: {production: true}

    """

func decode(_ text: String, file: String = "m.yaml") -> (documents: [ManifestDocument], diagnostics: [Diagnostic]) {
    ManifestDecoder.decode(file: file, text: text)
}

@Suite("TideManifest: decoding manifest v1 with positions")
struct ManifestDecoderTests {
    @Test("decodes every field of Executor, Environment and Service")
    func decodesFields() throws {
        let text = """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: local}
            spec:
              type: command
              command: ["./bin/deploy", "--fast"]
              timeout: 1m30s
              env: {REGION: eu}
            ---
            apiVersion: tide/v1
            kind: Environment
            metadata:
              name: prod
            spec:
              production: true
            ---
            apiVersion: tide/v1
            kind: Service
            metadata: {name: checkout, labels: {team: web}}
            spec:
              executor: local
              version: "1.4.2"
              config: {replicas: 3, ratio: 0.5, on: true, name: x, list: [1, two], nothing: null}
              environments:
                staging: {version: "1.5.0", config: {replicas: 1}}
                prod:
              dependsOn: [payments]
              strategy: {type: recreate}
            """
        let (documents, diagnostics) = decode(text)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        guard case .executor(let executor) = documents[0], case .environment(let environment) = documents[1],
            case .service(let service) = documents[2]
        else {
            Issue.record("unexpected documents \(documents)")
            return
        }
        #expect(executor.command == ["./bin/deploy", "--fast"])
        #expect(executor.timeout == 90)
        #expect(executor.environment == ["REGION": "eu"])
        #expect(environment.production)
        #expect(service.version == "1.4.2")
        #expect(service.location == SourceLocation(file: "m.yaml", line: 19, column: 18))
        #expect(service.environmentOrder == ["staging", "prod"])
        #expect(service.environments["staging"]?.version == "1.5.0")
        #expect(service.environments["prod"]?.version == nil)
        #expect(service.dependsOn == ["payments"])
        #expect(
            service.config
                == .object([
                    "replicas": .int(3), "ratio": .double(0.5), "on": .bool(true), "name": .string("x"),
                    "list": .array([.int(1), .string("two")]), "nothing": .null,
                ]))
    }

    struct BadCase: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var line: Int
        var column: Int
        var message: String
        var testDescription: String { name }
    }

    static let badCases: [BadCase] = [
        BadCase(
            name: "YAML syntax error", yaml: "apiVersion: tide/v1\nkind: Service\nmetadata: {name: [x\n", line: 4,
            column: 1, message: "YAML syntax error"),
        BadCase(
            name: "unknown field with suggestion",
            yaml: "apiVersion: tide/v1\nkind: Environment\nmetadata: {name: prod}\nspec: {prodution: true}\n",
            line: 4, column: 8, message: "unknown field 'prodution'; did you mean 'production'?"),
        BadCase(
            name: "wrong type: list expected",
            yaml: """
                apiVersion: tide/v1
                kind: Service
                metadata: {name: a}
                spec: {executor: local, version: "1", environments: {prod: {}}, dependsOn: payments}

                """, line: 4, column: 76, message: "spec.dependsOn: expected a list, found 'payments'"),
        BadCase(
            name: "wrong type: bool expected",
            yaml: "apiVersion: tide/v1\nkind: Environment\nmetadata: {name: prod}\nspec:\n  production: maybe\n",
            line: 5, column: 15, message: "spec.production: expected true or false, found 'maybe'"),
        BadCase(
            name: "wrong type: string expected",
            yaml: """
                apiVersion: tide/v1
                kind: Service
                metadata: {name: a}
                spec:
                  executor: local
                  version: {major: 1}
                  environments: {prod: {}}

                """, line: 6, column: 12, message: "spec.version: expected a string, found a mapping"),
        BadCase(
            name: "missing spec", yaml: "apiVersion: tide/v1\nkind: Environment\nmetadata: {name: prod}\n", line: 1,
            column: 1, message: "missing required field 'spec'"),
        BadCase(
            name: "wrong apiVersion",
            yaml: "apiVersion: tide/v2\nkind: Environment\nmetadata: {name: prod}\nspec: {}\n", line: 1, column: 13,
            message: "apiVersion: 'tide/v2' is not supported"),
        BadCase(
            name: "unknown kind", yaml: "apiVersion: tide/v1\nkind: Servce\nmetadata: {name: a}\nspec: {}\n", line: 2,
            column: 7, message: "unknown kind 'Servce'; did you mean 'Service'?"),
        BadCase(
            name: "invalid name", yaml: "apiVersion: tide/v1\nkind: Environment\nmetadata: {name: Prod_1}\nspec: {}\n",
            line: 3, column: 18, message: "'Prod_1' is not a valid name"),
        BadCase(
            name: "unsafe version",
            yaml: """
                apiVersion: tide/v1
                kind: Service
                metadata: {name: a}
                spec: {executor: local, version: "../../etc", environments: {prod: {}}}

                """, line: 4, column: 34, message: "'../../etc' is not a valid version"),
        BadCase(
            name: "bad duration",
            yaml:
                "apiVersion: tide/v1\nkind: Executor\nmetadata: {name: x}\nspec: {type: command, command: [a], timeout: soon}\n",
            line: 4, column: 46, message: "'soon' is not a duration"),
        BadCase(
            name: "a password in a database URL",
            yaml:
                "apiVersion: tide/v1\nkind: Executor\nmetadata: {name: db}\nspec: {type: sql, url: \"postgres://u:secret@h/db\"}\n",
            line: 4, column: 24,
            message: "spec.url: the URL holds a password; give it with password: {env: NAME} or {file: PATH}"),
        BadCase(
            name: "duplicate key",
            yaml:
                "apiVersion: tide/v1\nkind: Environment\nmetadata: {name: prod}\nspec: {production: true, production: false}\n",
            line: 4, column: 26, message: "duplicate key 'production' (first at line 4)"),
    ]

    @Test("bad input names file, line, column and field", arguments: badCases)
    func badInput(_ bad: BadCase) {
        let (_, diagnostics) = decode(bad.yaml, file: "services/x.yaml")
        let match = diagnostics.first { $0.message.contains(bad.message) }
        #expect(match != nil, "expected '\(bad.message)' in \(diagnostics)")
        #expect(match?.location == SourceLocation(file: "services/x.yaml", line: bad.line, column: bad.column))
        #expect(match?.description.hasPrefix("services/x.yaml:\(bad.line):\(bad.column): ") == true)
    }

    @Test("every problem of a file is reported, not just the first")
    func collectsAll() {
        let yaml = """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: a}
            spec:
              executor: local
              versoin: "1"
              environments: {prod: {version: "1"}}
              dependsOn: payments
              colour: blue

            """
        let (documents, diagnostics) = decode(yaml)
        #expect(documents.isEmpty)
        #expect(diagnostics.count == 3, "\(diagnostics)")
    }

    @Test(
        "durations",
        arguments: [("30s", 30.0), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("2d", 172_800), ("45", 45)])
    func durations(text: String, seconds: Double) {
        #expect(ManifestDuration.seconds(text) == seconds)
    }

    @Test("non-durations", arguments: ["", "soon", "5x", "m5", "-1s", "1h-5m"])
    func nonDurations(text: String) {
        #expect(ManifestDuration.seconds(text) == nil)
    }

    @Test("config merges per environment and its digest ignores key order")
    func configDigest() {
        let base = JSONValue.object(["replicas": .int(3), "flags": .object(["a": .bool(true), "b": .bool(false)])])
        let merged = base.merging(.object(["flags": .object(["b": .bool(true)])]))
        #expect(merged == .object(["replicas": .int(3), "flags": .object(["a": .bool(true), "b": .bool(true)])]))
        #expect(merged.canonicalJSON == #"{"flags":{"a":true,"b":true},"replicas":3}"#)
        let a = DesiredTarget(
            id: TargetID(service: "s", environment: "e"), executor: "x", version: "1", config: merged, dependsOn: [],
            location: SourceLocation(file: "f", line: 1, column: 1))
        #expect(a.configDigest.count == 40)
        #expect(JSONValue.string("a\"b\n").canonicalJSON == #""a\"b\n""#)
    }
}
