import Foundation
import Testing
import TideGit
import TideTestSupport

/// Tide operated as an SRE team runs it: the release binary as `tide run` in its own working directory, on a config
/// repo behind `git http-backend` with a token, executors named by relative paths in the repo — and operators
/// typing verbs from their own directories, as other users, with their own shell variables.
///
/// What must never happen: a verb running an executor in the operator's directory, as the operator, with the
/// operator's environment, or a program from the operator's directory; a verb the service's log, events and
/// metrics do not see; a read-only verb changing what the service reports (fetch status, the event log).
@Suite("End to end: operator verbs act through the service; executors come from the revision", .serialized)
struct OperatorServiceTests {
    /// The deploy script, committed in the config repo: it logs where and as whom it runs, which program it is,
    /// and whether a variable of an operator's shell reached it.
    static let deployScript = """
        #!/bin/sh
        echo "$TIDE_ACTION $TIDE_VERSION weight=$TIDE_WEIGHT pwd=$(pwd) uid=$(id -u) secret=${OPERATOR_SECRET:-none} program=$0" >> "$LOG"

        """

    /// What an operator's directory holds: a `bin/deploy` of their own that must never run.
    static let hostileScript = "#!/bin/sh\ntouch \"$(dirname \"$0\")/../HACKED\"\n"

    static func manifests(version: String, log: String) -> String {
        """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: deployer}
        spec: {type: command, command: [./bin/deploy], env: {LOG: "\(log)"}}
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: prod}
        spec: {production: true}
        ---
        apiVersion: tide/v1
        kind: Service
        metadata: {name: web}
        spec:
          executor: deployer
          version: "\(version)"
          strategy: {type: canary, steps: [{setWeight: 20}, {pause: {}}]}
          environments: {prod: {}}

        """
    }

    /// The SRE's setup: a bare config repo served over smart HTTP with a token, the service's directory (its
    /// working directory and state), and an operator's directory with a hostile `bin/deploy`.
    struct Setup {
        let fixture: GitFixture
        let scratch: TemporaryDirectory
        let server: GitHTTPServer
        let url: String
        let tokenFile: String
        let service: String
        let state: String
        let operatorHome: String
        let log: String

        init() throws {
            fixture = try GitFixture(bare: true)
            scratch = try TemporaryDirectory("tide-sre")
            // Everyone may read and write the scratch space: the operator is another user.
            try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: scratch.path)
            log = scratch.appending("executor.log")
            service = scratch.appending("service")
            operatorHome = scratch.appending("operator")
            for directory in [service, operatorHome + "/bin"] {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: service)
            try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: operatorHome)
            try Data(OperatorServiceTests.hostileScript.utf8).write(
                to: URL(fileURLWithPath: operatorHome + "/bin/deploy"))
            try FileManager.default.setAttributes(
                [.posixPermissions: 0o755], ofItemAtPath: operatorHome + "/bin/deploy")
            state = service + "/state.sqlite"
            // The executor appends here as whichever user runs it.
            _ = FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o666])
            try fixture.write("bin/deploy", OperatorServiceTests.deployScript, executable: true)
            try fixture.commit(
                "1.0.0", files: ["tide.yaml": OperatorServiceTests.manifests(version: "1.0.0", log: log)])
            let token = "tok-\(UUID().uuidString)"
            server = try GitHTTPServer(root: (fixture.repoPath as NSString).deletingLastPathComponent, token: token)
            url = server.url((fixture.repoPath as NSString).lastPathComponent)
            tokenFile = scratch.appending("token")
            try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        }

        var credentials: [String] { ["--git-username", server.user, "--git-password-file", tokenFile] }

        func lines() -> [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        /// Lets another user read and write the state the service made (as a group-writable install would).
        func shareState() throws {
            for name in try FileManager.default.contentsOfDirectory(atPath: service) {
                let path = service + "/" + name
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
                if !isDirectory.boolValue {
                    try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: path)
                }
            }
        }

        /// `tide ARGS --repo URL --state STATE` from the operator's directory, as `nobody` when this runs as root
        /// (else as this user), with a variable of the operator's shell set.
        func asOperator(_ arguments: [String], credentials: Bool = false) async throws -> ProcessOutput {
            let all = arguments + ["--repo", url, "--state", state] + (credentials ? self.credentials : [])
            let environment = ["OPERATOR_SECRET": "from-the-operators-shell", "HOME": operatorHome]
            if getuid() == 0 {
                return try await detached {
                    try runProcess(
                        "/usr/bin/setpriv",
                        ["--reuid=65534", "--regid=65534", "--clear-groups", "--", TideBinary.path] + all,
                        in: operatorHome, environment: environment)
                }
            }
            return try await TideBinary.runDetached(all, in: operatorHome, environment: environment)
        }
    }

    static func waitFor(_ what: String, timeout: Double = 30, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what)")
    }

    @Test(
        "a verb from another directory, as another user, is carried out by tide run in its own context; plan writes nothing"
    )
    func verbsThroughTheService() async throws {
        let setup = try await detached { try Setup() }
        let daemon = try await TideDaemon(
            ["--repo", setup.url, "--state", setup.state, "--interval", "1s"] + setup.credentials,
            in: setup.service, logDirectory: setup.scratch.path)
        try await Self.waitFor("the first deployment") { setup.lines().count >= 2 }
        let service = URL(fileURLWithPath: setup.service).resolvingSymlinksInPath().path
        #expect(
            setup.lines().allSatisfy {
                $0.contains("pwd=\(service) ") && $0.contains("uid=\(getuid()) ") && $0.contains("secret=none")
                    && $0.contains("/service/revisions/")
            }, "\(setup.lines())")

        try await setup.fixture.commit(
            "2.0.0", files: ["tide.yaml": Self.manifests(version: "2.0.0", log: setup.log)])
        try await Self.waitFor("the canary to pause") { setup.lines().contains { $0.hasPrefix("set-weight 2.0.0") } }
        try await Task.sleep(for: .milliseconds(500))
        try setup.shareState()
        let before = setup.lines().count

        let promoted = try await setup.asOperator(["promote", "web", "--env", "prod"])
        #expect(promoted.status == 0, "\(promoted.combined)")
        #expect(promoted.standardOutput.contains("web@prod: promoted past step 2/2"), "\(promoted.combined)")
        #expect(promoted.standardOutput.contains("web@prod: deployed"), "\(promoted.combined)")
        let promotion = Array(setup.lines().dropFirst(before))
        #expect(
            promotion.map { $0.split(separator: " ").prefix(2).joined(separator: " ") } == [
                "promote 2.0.0", "health 2.0.0",
            ])
        for line in promotion {
            #expect(line.contains("pwd=\(service) "), "ran in the operator's directory: \(line)")
            #expect(line.contains("uid=\(getuid()) "), "ran as the operator: \(line)")
            #expect(line.contains("secret=none"), "the operator's variable reached the executor: \(line)")
            #expect(line.contains("/service/revisions/") && line.hasSuffix("/bin/deploy"), "\(line)")
        }
        #expect(!FileManager.default.fileExists(atPath: setup.operatorHome + "/HACKED"))

        let operatorName = getuid() == 0 ? "nobody" : NSUserName()
        let history = try await TideBinary.runDetached(
            ["history", "--json", "--repo", setup.url, "--state", setup.state], in: setup.service)
        let events = try #require(
            try JSONSerialization.jsonObject(with: Data(history.standardOutput.utf8)) as? [[String: Any]])
        let event = try #require(events.first { $0["kind"] as? String == "rollout.promoted" })
        let details = event["details"] as? [String: Any]
        #expect(details?["by"] as? String == operatorName, "\(event)")
        #expect((details?["via"] as? String)?.hasPrefix("tide run (pid \(daemon.pid))") == true, "\(event)")
        #expect(daemon.log().contains("operator"), "\(daemon.log())")
        #expect(daemon.log().contains("verb=promote"), "\(daemon.log())")
        let metrics = try await daemon.get("/metrics").body
        #expect(metrics.contains(#"tide_operator_requests_total{verb="promote",result="done"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"tide_executor_actions_total{action="promote",result="succeeded"} 1"#))

        // A read-only verb without credentials leaves the service's fetch status and the event log alone.
        let eventCount = events.count
        let plan = try await setup.asOperator(["plan"])
        #expect(plan.status == 0, "\(plan.combined)")
        #expect(plan.standardError.contains("reading the revision tide run"), "\(plan.combined)")
        let after = try await TideBinary.runDetached(
            ["history", "--json", "--all", "--limit", "1000", "--repo", setup.url, "--state", setup.state],
            in: setup.service)
        #expect(!after.standardOutput.contains("fetch.failed"), "\(after.standardOutput)")
        #expect(try await daemon.get("/metrics").body.contains("tide_fetch_failing 0"))
        let summary = try await TideBinary.runDetached(
            ["history", "--json", "--repo", setup.url, "--state", setup.state], in: setup.service)
        #expect(
            (try JSONSerialization.jsonObject(with: Data(summary.standardOutput.utf8)) as? [Any])?.count == eventCount)

        // A refusal comes back with the same words the verb prints on its own, and exit status 1.
        let refused = try await setup.asOperator(["resume", "web", "--env", "prod"])
        #expect(refused.status == 1, "\(refused.combined)")
        #expect(
            refused.standardError.contains("tide: error: web@prod has no rollout in progress"), "\(refused.combined)")
        // --no-wait hands over and returns.
        let queued = try await setup.asOperator(["suspend", "web", "--env", "prod", "--no-wait"])
        #expect(queued.status == 0 && queued.standardOutput.contains("handed to tide run"), "\(queued.combined)")
        try await Self.waitFor("the suspension") {
            let status = try await TideBinary.runDetached(
                ["status", "--repo", setup.url, "--state", setup.state], in: setup.service)
            return status.standardOutput.contains("suspended")
        }
        #expect(await daemon.stop() == 0)
        #expect(!daemon.log().contains("tok-"), "the token was logged")
    }

    @Test("without a service, a verb from another directory runs the revision's program in the state directory")
    func verbsWithoutAService() async throws {
        let setup = try await detached { try Setup() }
        let first = try await TideBinary.runDetached(
            ["reconcile", "--repo", setup.url, "--state", setup.state] + setup.credentials, in: setup.service)
        #expect(first.status == 0, "\(first.combined)")
        try await setup.fixture.commit("2.0.0", files: ["tide.yaml": Self.manifests(version: "2.0.0", log: setup.log)])
        #expect(
            try await TideBinary.runDetached(
                ["reconcile", "--repo", setup.url, "--state", setup.state] + setup.credentials, in: setup.service
            ).status == 0)
        try setup.shareState()
        let before = setup.lines().count
        let aborted = try await setup.asOperator(["abort", "web", "--env", "prod"], credentials: true)
        #expect(aborted.status == 0, "\(aborted.combined)")
        let rollback = Array(setup.lines().dropFirst(before))
        #expect(rollback.first?.hasPrefix("rollback 1.0.0") == true, "\(rollback)")
        let service = URL(fileURLWithPath: setup.service).resolvingSymlinksInPath().path
        for line in rollback {
            #expect(line.contains("pwd=\(service) "), "\(line)")
            #expect(line.contains("secret=none"), "\(line)")
            #expect(line.contains("/service/revisions/"), "\(line)")
        }
        #expect(!FileManager.default.fileExists(atPath: setup.operatorHome + "/HACKED"))
    }
}
