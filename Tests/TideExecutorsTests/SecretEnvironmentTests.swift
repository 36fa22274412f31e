import Foundation
import Testing
import TideExecutors
import TideManifest
import TideTestSupport

/// A sql executor's `password: {env: NAME}` is Tide's own secret: real command and plugin processes (service
/// executors, analysis providers) dump the environment they get, and the password is not in it.
@Suite("TideExecutors: database passwords stay out of executor processes")
struct SecretEnvironmentTests {
    let directory: TemporaryDirectory
    let secret = Self.variables.secret
    let visible = Self.variables.visible
    let password = Self.variables.password

    /// Names and a value of this suite's own, set once (setenv is no thing to do while other threads read the
    /// environment, so not once per test).
    static let variables: (secret: String, visible: String, password: String) = {
        let tag = UUID().uuidString.prefix(8)
        let names = (secret: "ORDERS_DB_PASSWORD_\(tag)", visible: "ORDERS_REGION_\(tag)", password: "pw-\(tag)")
        setenv(names.secret, names.password, 1)
        setenv(names.visible, "eu", 1)
        return names
    }()

    init() throws {
        directory = try TemporaryDirectory("tide-secret")
    }

    /// The executors of a config repo: a sql executor naming the password variable, a command executor that
    /// dumps its environment to `out`, and a plugin that answers with its environment.
    func manifests(out: String) throws -> [String: ExecutorManifest] {
        let text = """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: orders-db}
            spec:
              type: sql
              url: "postgres://tide@db.internal:5432/orders"
              password: {env: \(secret)}
            ---
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: local}
            spec:
              type: command
              command: ["/bin/sh", "-c", "env > \(out)"]
              env: {FROM_MANIFEST: "yes"}
            ---
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: adapter}
            spec:
              type: plugin
              command: ["python3", "-u", "-c", "\(Self.plugin)"]

            """
        let (documents, diagnostics) = ManifestDecoder.decode(file: "executors.yaml", text: text)
        try #require(diagnostics.isEmpty, "\(diagnostics)")
        var executors: [String: ExecutorManifest] = [:]
        for case .executor(let executor) in documents { executors[executor.name] = executor }
        return executors
    }

    /// Answers each request with the names of the variables it has.
    static let plugin =
        "import json, os, sys\\n"
        + "for line in sys.stdin:\\n"
        + "    r = json.loads(line)\\n"
        + "    print(json.dumps({'actionId': r['actionId'], 'ok': True, 'output': sorted(os.environ)}), flush=True)\\n"

    static let request = ActionRequest(
        action: .deploy, service: "checkout", environment: "prod", version: "1.5.0", previousVersion: "1.4.2",
        weight: 100, revision: String(repeating: "c", count: 40), actionID: "checkout.prod.cccccccccccc.0-deploy",
        config: .object([:]))

    @Test(
        "a command executor and an analysis provider get the variables TIDE_EXECUTOR_ENV names, never the password; the manifest's env still"
    )
    func commandExecutor() async throws {
        let out = directory.appending("env")
        let executors = try manifests(out: out)
        // The password's variable is named too: a secret Tide holds is never passed on, even when asked for.
        let factory = DefaultExecutorFactory(
            workingDirectory: directory.path, environment: ExecutorEnvironment(passThrough: [visible, secret]))
        let result = try await factory.makeExecutor(for: try #require(executors["local"])).perform(Self.request)
        #expect(result.succeeded, "\(result.summary)")
        let env = try String(contentsOfFile: out, encoding: .utf8)
        #expect(!env.contains(secret), "the password variable reached the executor")
        #expect(!env.contains(password))
        #expect(env.contains("\(visible)=eu\n"))
        #expect(env.contains("FROM_MANIFEST=yes\n"))
        #expect(env.contains("TIDE_ACTION=deploy\n"))
        // Tide itself still reads it, for its database connection.
        #expect(ProcessInfo.processInfo.environment[secret] == password)

        // An analysis `command` provider, as the engine makes it: a command executor of its own.
        let provider = ExecutorManifest(
            name: "analysis-error-budget", location: SourceLocation(file: "a.yaml", line: 1, column: 1),
            command: ["/bin/sh", "-c", "env > \(out).measure"], timeout: 60, environment: ["TIDE_METRIC": "errors"])
        let measured = try await factory.makeExecutor(for: provider).perform(Self.request)
        #expect(measured.succeeded, "\(measured.summary)")
        let measureEnv = try String(contentsOfFile: out + ".measure", encoding: .utf8)
        #expect(!measureEnv.contains(secret))
        #expect(measureEnv.contains("TIDE_METRIC=errors\n"))
        #expect(measureEnv.contains("\(visible)=eu\n"))
    }

    @Test("an executor whose own env sets the variable gets what the manifest says")
    func manifestEnvironmentWins() async throws {
        let out = directory.appending("env")
        _ = try manifests(out: out)
        let manifest = ExecutorManifest(
            name: "explicit", location: SourceLocation(file: "e.yaml", line: 1, column: 1),
            command: ["/bin/sh", "-c", "env > \(out)"], timeout: 60, environment: [secret: "given-on-purpose"])
        let result = await CommandExecutor(manifest: manifest, workingDirectory: directory.path).perform(Self.request)
        #expect(result.succeeded, "\(result.summary)")
        let env = try String(contentsOfFile: out, encoding: .utf8)
        #expect(env.contains("\(secret)=given-on-purpose\n"))
    }

    @Test("an executor gets a built environment, not the one of whoever runs tide")
    func builtEnvironment() async throws {
        let out = directory.appending("env")
        let executors = try manifests(out: out)
        // What `TIDE_EXECUTOR_ENV` does not name stays with the caller (its credentials, its PATH, its directory).
        let factory = DefaultExecutorFactory(workingDirectory: directory.path, environment: ExecutorEnvironment())
        let result = try await factory.makeExecutor(for: try #require(executors["local"])).perform(Self.request)
        #expect(result.succeeded, "\(result.summary)")
        let lines = Set(try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init))
        #expect(!lines.contains { $0.hasPrefix(visible + "=") }, "a variable of the caller reached the executor")
        #expect(lines.contains("PATH=\(ExecutorEnvironment.defaultPath)"))
        #expect(lines.contains("LANG=C.UTF-8"))
        #expect(lines.contains("USER=\(NSUserName())"))
        #expect(lines.contains("PWD=\(directory.path)") || lines.contains { $0.hasPrefix("HOME=") })
        #expect(lines.contains("FROM_MANIFEST=yes"))
        #expect(ExecutorEnvironment.names("A, B:C") == ["A", "B", "C"])
    }

    @Test("a plugin process does not inherit the password")
    func plugin() async throws {
        let executors = try manifests(out: directory.appending("unused"))
        let factory = DefaultExecutorFactory(
            workingDirectory: directory.path, environment: ExecutorEnvironment(passThrough: [visible, secret]))
        let result = try await factory.makeExecutor(for: try #require(executors["adapter"])).perform(Self.request)
        #expect(result.succeeded, "\(result.summary)")
        let names = try JSONDecoder().decode([String].self, from: Data(result.standardOutput.utf8))
        #expect(names.contains(visible))
        #expect(names.contains("TIDE_PLUGIN_PROTOCOL"))
        #expect(!names.contains(secret))
    }
}
