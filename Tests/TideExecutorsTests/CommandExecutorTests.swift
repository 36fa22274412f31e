import Foundation
import Testing
import TideExecutors
import TideManifest
import TideTestSupport

@Suite("TideExecutors: the command executor protocol v1")
struct CommandExecutorTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory("tide-exec")
    }

    func script(_ name: String, _ body: String) throws -> String {
        let path = directory.appending(name)
        try Data("#!/bin/sh\n\(body)\n".utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    func executor(_ command: [String], timeout: Double = 60, env: [String: String] = [:]) -> CommandExecutor {
        CommandExecutor(
            manifest: ExecutorManifest(
                name: "test", location: SourceLocation(file: "x", line: 1, column: 1), command: command,
                timeout: timeout, environment: env),
            workingDirectory: directory.path)
    }

    static let request = ActionRequest(
        action: .deploy, service: "checkout", environment: "prod", version: "1.5.0", previousVersion: "1.4.2",
        weight: 100, revision: String(repeating: "c", count: 40), actionID: "checkout.prod.cccccccccccc.0-deploy",
        config: .object(["replicas": .int(3)]))

    @Test("passes TIDE_* variables, the manifest's env and the JSON request on stdin")
    func environmentAndStdin() async throws {
        let out = directory.appending("out")
        let path = try script(
            "record",
            """
            env | grep -E '^(TIDE_|EXTRA=)' | sort > "\(out).env"
            cat > "\(out).json"
            pwd > "\(out).pwd"
            """)
        let result = await executor([path], env: ["EXTRA": "yes"]).perform(Self.request)
        #expect(result.succeeded, "\(result)")
        let env = try String(contentsOfFile: out + ".env", encoding: .utf8)
        #expect(
            env == """
                EXTRA=yes
                TIDE_ACTION=deploy
                TIDE_ACTION_ID=checkout.prod.cccccccccccc.0-deploy
                TIDE_ENVIRONMENT=prod
                TIDE_PREVIOUS_VERSION=1.4.2
                TIDE_REVISION=\(String(repeating: "c", count: 40))
                TIDE_SERVICE=checkout
                TIDE_VERSION=1.5.0
                TIDE_WEIGHT=100

                """)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + ".json")))
        let object = try #require(json as? [String: Any])
        #expect(object["action"] as? String == "deploy")
        #expect(object["actionId"] as? String == "checkout.prod.cccccccccccc.0-deploy")
        #expect(object["previousVersion"] as? String == "1.4.2")
        #expect((object["config"] as? [String: Any])?["replicas"] as? Int == 3)
        #expect(try String(contentsOfFile: out + ".pwd", encoding: .utf8) == directory.path + "\n")
    }

    @Test("argv is passed as is: no shell expands anything")
    func noShell() async throws {
        let out = directory.appending("args")
        let path = try script("args", "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"\(out)\"")
        let result = await executor([path, "$(touch \(directory.appending("pwned")))", "a b", "*"]).perform(
            Self.request)
        #expect(result.succeeded)
        #expect(
            try String(contentsOfFile: out, encoding: .utf8)
                == "$(touch \(directory.appending("pwned")))\na b\n*\n")
        #expect(!FileManager.default.fileExists(atPath: directory.appending("pwned")))
    }

    @Test("a relative program path resolves against the working directory; a bare name against PATH")
    func programLookup() async throws {
        _ = try script("relative", "exit 0")
        #expect(await executor(["./relative"]).perform(Self.request).succeeded)
        #expect(await executor(["true"]).perform(Self.request).succeeded)
    }

    @Test("a non-zero exit fails the action and keeps stderr")
    func failure() async throws {
        let path = try script("fail", "echo 'progress' ; echo 'disk full' >&2; exit 3")
        let result = await executor([path]).perform(Self.request)
        #expect(result.outcome == .exited(3))
        #expect(result.standardError == "disk full\n")
        #expect(result.standardOutput == "progress\n")
        #expect(result.summary == "exited with status 3: disk full")
    }

    @Test("a program that cannot start is a failure, not a crash")
    func cannotStart() async throws {
        let result = await executor([directory.appending("does-not-exist")]).perform(Self.request)
        guard case .couldNotStart = result.outcome else {
            Issue.record("expected couldNotStart, got \(result.outcome)")
            return
        }
    }

    @Test("a timeout kills the whole process group, children included")
    func timeoutKillsGroup() async throws {
        let pidFile = directory.appending("child.pid")
        let path = try script(
            "hang",
            """
            sleep 60 &
            echo $! > "\(pidFile)"
            echo started >&2
            wait
            """)
        let start = Date()
        let result = await executor([path], timeout: 1).perform(Self.request)
        #expect(result.outcome == .timedOut(seconds: 1))
        // Well under the child's 60 s sleep: the group was killed, not waited for. (Generous, because tests that
        // run processes in parallel can starve the timer task of threads for a while.)
        #expect(Date().timeIntervalSince(start) < 58)
        let child = try #require(
            Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // The grandchild got the group's signal too; allow a moment for the kernel to reap it.
        var alive = true
        for _ in 0..<50 {
            if kill(child, 0) != 0 || isZombie(child) {
                alive = false
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(!alive, "child \(child) of the timed-out executor is still running")
    }

    @Test("large output is drained and truncated, never blocking the process")
    func largeOutput() async throws {
        let path = try script(
            "noisy",
            "i=0; while [ $i -lt 3000 ]; do echo 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' >&2; i=$((i+1)); done; echo end >&2"
        )
        let result = await executor([path]).perform(Self.request)
        #expect(result.succeeded)
        #expect(result.standardError.utf8.count <= CommandExecutor.outputLimit)
        #expect(result.standardError.hasSuffix("end\n"))
    }
}

/// A killed process whose parent has not reaped it yet still answers kill(pid, 0).
func isZombie(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(close, offsetBy: 2)] == "Z"
}
