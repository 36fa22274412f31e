import Foundation
import Testing
import TideExecutors
import TideManifest
import TideTestSupport

/// A real plugin process (a Python script) spoken to in JSON lines.
@Suite("TideExecutors: the plugin executor")
struct PluginExecutorTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory("tide-plugin")
    }

    /// Answers every request with its own pid and the request it saw; `TIDE_TEST_MODE` in the request's config
    /// picks a misbehaviour.
    static let plugin = #"""
        import json, os, sys, time
        sys.stderr.write("plugin %d up, protocol %s\n" % (os.getpid(), os.environ.get("TIDE_PLUGIN_PROTOCOL")))
        sys.stderr.flush()
        for line in sys.stdin:
            request = json.loads(line)
            mode = request["config"].get("mode", "ok")
            if mode == "crash":
                sys.stderr.write("plugin: giving up on %s\n" % request["actionId"])
                sys.exit(3)
            if mode == "hang":
                time.sleep(60)
            if mode == "garbage":
                print("this is not json", flush=True)
                continue
            if mode == "refuse":
                answer = {"actionId": request["actionId"], "ok": False, "error": "quota exceeded in " + request["environment"]}
            elif mode == "busy":
                answer = {"actionId": request["actionId"], "ok": False, "retry": True, "error": "the API is throttling"}
            else:
                answer = {"actionId": request["actionId"], "ok": True,
                          "output": {"pid": os.getpid(), "action": request["action"], "weight": request["weight"]}}
            print(json.dumps(answer), flush=True)
        """#

    func executor(name: String, timeout: Double = 60) throws -> PluginExecutor {
        let path = directory.appending("plugin.py")
        try Data(Self.plugin.utf8).write(to: URL(fileURLWithPath: path))
        return PluginExecutor(
            manifest: ExecutorManifest(
                name: name, location: SourceLocation(file: "x", line: 1, column: 1), type: .plugin,
                command: ["python3", "-u", path], timeout: timeout),
            workingDirectory: directory.path)
    }

    static func request(_ action: ExecutorAction, mode: String = "ok", id: String = UUID().uuidString) -> ActionRequest
    {
        ActionRequest(
            action: action, service: "checkout", environment: "prod", version: "1.5.0", previousVersion: "1.4.2",
            weight: 25, revision: String(repeating: "c", count: 40), actionID: id,
            config: .object(["mode": .string(mode)]))
    }

    func pid(_ result: ActionResult) throws -> Int {
        let object = try JSONDecoder().decode([String: JSONValue].self, from: Data(result.standardOutput.utf8))
        guard case .int(let pid)? = object["pid"] else { throw FixtureError("no pid in \(result.standardOutput)") }
        return Int(pid)
    }

    @Test("one long-lived process answers every action, one JSON line each")
    func longLived() async throws {
        let plugin = try executor(name: "long-lived")
        let deploy = await plugin.perform(Self.request(.deploy))
        #expect(deploy.succeeded, "\(deploy.summary)")
        let weight = await plugin.perform(Self.request(.setWeight))
        #expect(weight.standardOutput.contains("\"action\":\"set-weight\""))
        #expect(weight.standardOutput.contains("\"weight\":25"))
        // An executor made again for the same manifest talks to the same process.
        let again = await (try executor(name: "long-lived")).perform(Self.request(.health))
        #expect(try pid(deploy) == pid(weight))
        #expect(try pid(deploy) == pid(again))
        // The plugin's stderr is read beside its answers: its first line may come in after the first answer.
        var stderr = deploy.standardError
        for _ in 0..<100 where !stderr.contains("protocol 1") {
            try await Task.sleep(for: .milliseconds(50))
            stderr = await plugin.perform(Self.request(.health)).standardError
        }
        #expect(stderr.contains("protocol 1"), "\(stderr)")
    }

    @Test("ok: false fails the action with the plugin's reason; the process stays")
    func refusal() async throws {
        let plugin = try executor(name: "refusal")
        let first = await plugin.perform(Self.request(.deploy))
        let refused = await plugin.perform(Self.request(.promote, mode: "refuse"))
        #expect(refused.outcome == .failed("quota exceeded in prod"))
        #expect(refused.summary == "failed: quota exceeded in prod")
        let after = await plugin.perform(Self.request(.health))
        #expect(try pid(first) == pid(after))
        // "retry": true says what the plugin talks to is unavailable now: transient, retried, never a verdict.
        let busy = await plugin.perform(Self.request(.promote, mode: "busy"))
        #expect(busy.outcome == .unavailable("the API is throttling") && busy.isTransient)
    }

    @Test(
        "a plugin that dies fails the action transiently (not the candidate's doing) with its last words; the next action starts a new one"
    )
    func crash() async throws {
        let plugin = try executor(name: "crash")
        let first = await plugin.perform(Self.request(.deploy))
        let crashed = await plugin.perform(Self.request(.promote, mode: "crash", id: "checkout.prod.x.promote"))
        #expect(!crashed.succeeded && crashed.isTransient)
        #expect(
            crashed.summary == "unavailable (transient): the plugin exited with status 3 before answering",
            "\(crashed.summary)")
        #expect(crashed.standardError.contains("plugin: giving up on checkout.prod.x.promote"))
        let next = await plugin.perform(Self.request(.health))
        #expect(next.succeeded, "\(next.summary)")
        #expect(try pid(first) != pid(next))
    }

    @Test("a plugin that does not answer in time is killed; the next action starts a new one")
    func timeout() async throws {
        await waitUntilThreadsAreResponsive()
        let plugin = try executor(name: "timeout", timeout: 15)
        let first = await plugin.perform(Self.request(.deploy))
        let hung = await plugin.perform(Self.request(.promote, mode: "hang"))
        #expect(hung.outcome == .timedOut(seconds: 15))
        #expect(hung.standardError.contains("did not answer within 15s"))
        let next = await plugin.perform(Self.request(.health))
        #expect(next.succeeded, "\(next.summary)")
        #expect(try pid(first) != pid(next))
        // The hung process is gone (SIGTERM to its process group).
        let hungPid = pid_t(try pid(first))
        var alive = true
        for _ in 0..<50 where alive {
            alive = kill(hungPid, 0) == 0
            if alive { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(!alive)
    }

    @Test("an answer out of protocol fails the action and restarts the plugin")
    func garbage() async throws {
        let plugin = try executor(name: "garbage")
        let first = await plugin.perform(Self.request(.deploy))
        let bad = await plugin.perform(Self.request(.promote, mode: "garbage"))
        #expect(bad.summary.hasPrefix("failed: protocol: the plugin answered with something other than a JSON object"))
        let next = await plugin.perform(Self.request(.health))
        #expect(next.succeeded)
        #expect(try pid(first) != pid(next))
    }

    @Test("a program that cannot start fails every action with why")
    func cannotStart() async throws {
        let plugin = PluginExecutor(
            manifest: ExecutorManifest(
                name: "missing", location: SourceLocation(file: "x", line: 1, column: 1), type: .plugin,
                command: ["/nonexistent/plugin"], timeout: 60),
            workingDirectory: directory.path)
        let result = await plugin.perform(Self.request(.deploy))
        #expect(result.summary.hasPrefix("could not start: cannot start the plugin"), "\(result.summary)")
    }
}
