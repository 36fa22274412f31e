import Foundation
import Testing
import TideGit
import TideManifest
import TideTestSupport

@Suite("TideManifest: executor fields name their place")
struct ExecutorFieldTests {
    @Test(
        "each executor problem names file:line:column and the field path",
        arguments: [
            ("{type: kubectl}", "spec.type: unknown executor type 'kubectl'; expected command, plugin"),
            (
                "{type: flags, path: f.json, command: [x]}",
                "spec.command: only a command or plugin executor runs a command"
            ),
            (
                "{type: command, command: [x], configDir: d}", "spec.configDir: only an nginx executor has 'configDir'"
            ),
            (
                "{type: command, command: [x], env: {TIDE_X: 1}}",
                "spec.env.TIDE_X: TIDE_* variables are set by tide itself"
            ),
            ("{type: command, command: [x], timeout: 0s}", "spec.timeout: must be longer than 0s"),
            ("{type: command, command: [\"\"]}", "spec.command: must name a program to run"),
            (
                "{type: nginx, configDir: d, test: []}", "spec.test: expected a command (a list: program and arguments)"
            ),
            ("{type: sql, environments: {prod: {}}}", "spec.environments.prod: missing required field 'url'"),
            ("{type: plugin}", "spec: missing required field 'command' for a plugin executor"),
            (
                "{type: sql, url: \"sqlite://admin:hunter2@localhost/db.sqlite\"}",
                "spec.url: the URL holds a password"
            ),
            ("{type: sql, url: \"sqlite:/db.sqlite?password=hunter2\"}", "spec.url: the URL holds a password"),
            ("{type: sql, url: \"sqlite://admin@localhost/db\"}", "names a file, not a user or a host"),
            (
                "{type: command, command: [x], retry: {limit: -1}}",
                "spec.retry.limit: expected a whole number from 0 to 20"
            ),
            ("{type: http}", "spec: missing required field 'url' (where tide POSTs each action)"),
            ("{type: http, url: \"ftp://deploy.internal/\"}", "spec.url: 'ftp://deploy.internal/' is not an http"),
            (
                "{type: http, url: \"https://ci:hunter2@deploy.internal/\"}",
                "spec.url: 'https://ci:***@deploy.internal/' carries credentials"
            ),
            ("{type: http, url: \"https://deploy.internal/?token=hunter2\"}", "carries credentials"),
            (
                "{type: http, url: \"https://d.internal/\", headers: {Authorization: {value: hunter2}}}",
                "spec.headers.Authorization"
            ),
            (
                "{type: http, url: \"https://d.internal/\", headers: {X-Key: {env: PATH}}}",
                "'PATH' is a variable every process needs"
            ),
            (
                "{type: http, url: \"https://d.internal/\", headers: {Idempotency-Key: x}}",
                "spec.headers.Idempotency-Key: 'Idempotency-Key' is set by tide itself"
            ),
            ("{type: http, url: \"https://d.internal/\", headers: {\"a b\": x}}", "is not an HTTP header name"),
            (
                "{type: http, url: \"https://d.internal/\", secret: hunter2}",
                "spec.secret: expected {env: VARIABLE} or {file: PATH}, never the signing key itself"
            ),
            (
                "{type: http, url: \"https://d.internal/\", secret: {file: keys/hmac}}",
                "spec.secret.file: 'keys/hmac' is relative"
            ),
            ("{type: command, command: [x], headers: {A: b}}", "spec.headers: only an http executor has 'headers'"),
            // Hardening round two, 16: what exec would refuse at every deployment is refused here.
            (
                "{type: command, command: [x, \(String(repeating: "a", count: 128 * 1024))]}",
                "spec.command[1]: an argument is 128 KiB or longer"
            ),
            (
                "{type: command, command: [x], env: {BIG: \(String(repeating: "a", count: 128 * 1024))}}",
                "spec.env.BIG: the variable is 128 KiB or longer"
            ),
            // Each string under the bound, all of them together over what exec takes.
            (
                "{type: command, command: [x, ARGS], env: {A: ENV, B: ENV, C: ENV, D: ENV, E: ENV, F: ENV, G: ENV, "
                    + "H: ENV, I: ENV, J: ENV}}",
                "spec.command: the command and env together are 1100 KiB"
            ),
        ].map {
            (
                $0.0.replacingOccurrences(of: "ARGS", with: String(repeating: "a", count: 100 * 1024))
                    .replacingOccurrences(of: "ENV", with: String(repeating: "e", count: 100 * 1024)), $0.1
            )
        })
    func problems(_ spec: String, _ message: String) {
        let text = "apiVersion: tide/v1\nkind: Executor\nmetadata: {name: x}\nspec: \(spec)\n"
        let (_, diagnostics) = ManifestDecoder.decode(file: "x.yaml", text: text)
        let match = diagnostics.first { $0.message.contains(message) }
        #expect(match != nil, "expected '\(message)' in \(diagnostics)")
        #expect(match?.message.hasPrefix("Executor 'x': ") == true)
        #expect(match?.location.file == "x.yaml")
        #expect(match?.location.line == 4, "\(String(describing: match?.location))")
        #expect(!diagnostics.description.contains("hunter2"), "a password reached a message")
    }

    @Test("an http executor: url, headers written or read from secrets, a signing secret and a CA file")
    func httpExecutor() throws {
        let text = """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: deployer}
            spec:
              type: http
              url: https://deploy.internal/actions
              timeout: 20s
              headers: {X-Team: payments, Authorization: {env: DEPLOY_TOKEN}}
              secret: {file: /etc/tide/secrets/hmac}
              caFile: certs/ca.pem
            """
        let (manifests, diagnostics) = ManifestDecoder.decode(file: "x.yaml", text: text)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        guard case .executor(let executor)? = manifests.first, case .http(let spec) = executor.kind else {
            Issue.record("not an http executor: \(manifests)")
            return
        }
        #expect(executor.timeout == 20)
        #expect(spec.url == "https://deploy.internal/actions")
        #expect(spec.headers == ["X-Team": .text("payments"), "Authorization": .secret(.environment("DEPLOY_TOKEN"))])
        #expect(spec.secret == .file("/etc/tide/secrets/hmac"))
        #expect(spec.caFile == "certs/ca.pem")
        // Its digest covers where a secret is read from, never a value.
        #expect(executor.whatRuns.canonicalJSON.contains(#""Authorization":{"env":"DEPLOY_TOKEN"}"#))
    }
}
