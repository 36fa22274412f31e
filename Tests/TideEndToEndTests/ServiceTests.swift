import Foundation
import Testing
import TideGit
import TideTestSupport

/// `tide run` as a user runs it: a real process on a loopback port, driven over HTTP with curl.
@Suite("tide run: the reconciler as a service")
struct ServiceTests {
    static let secret = "It's a Secret to Everybody"

    /// A config repo in a bare repository, served to the daemon as a file:// remote (so only a poll or a webhook
    /// makes it fetch), and a webhook secret file.
    struct Remote {
        let repo: ConfigRepo
        let secretFile: String

        init() throws {
            repo = try ConfigRepo(bare: true)
            secretFile = repo.scratch.appending("webhook-secret")
            try (ServiceTests.secret + "\n").write(toFile: secretFile, atomically: true, encoding: .utf8)
        }

        var url: String { "file://" + repo.fixture.repoPath }

        func daemon(_ extra: [String] = [], environment: [String: String] = [:]) async throws -> TideDaemon {
            try await TideDaemon(
                ["--repo", url, "--state", repo.state, "--webhook-secret-file", secretFile] + extra,
                in: repo.scratch.path, environment: environment, logDirectory: repo.scratch.path)
        }
    }

    /// Headers signing `body` as a webhook sender would (openssl's HMAC, not Tide's code).
    static func signed(_ body: String, secret: String = ServiceTests.secret, header: String = "X-Tide-Signature")
        async -> [String: String]
    {
        let out = try? await detached {
            try runProcess("/usr/bin/openssl", ["dgst", "-sha256", "-hmac", secret, "-hex"], input: body)
        }
        let hex = out?.standardOutput.split(separator: " ").last.map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return [header: "sha256=\(hex ?? "")", "Content-Type": "application/json"]
    }

    @Test("deploys on start; /healthz, /readyz and /metrics answer, and promtool accepts the exposition")
    func observability() async throws {
        let remote = try await detached { try Remote() }
        let daemon = try await remote.daemon(["--interval", "1h"])
        #expect(await daemon.waitForLog("info pass "), "\(daemon.log())")
        #expect(
            remote.repo.calls() == [
                "deploy api@prod 1.0.0", "health api@prod 1.0.0", "deploy web@prod 1.0.0", "health web@prod 1.0.0",
            ])
        #expect(try await daemon.get("/healthz").status == 200)
        let ready = try await daemon.get("/readyz")
        #expect(ready.status == 200 && ready.body.hasPrefix("ready: revision "), "\(ready.body)")
        let metrics = try await daemon.get("/metrics")
        #expect(metrics.status == 200)
        for line in [
            #"tide_target_info{service="api",environment="prod",phase="Healthy",version="1.0.0"} 1"#,
            #"tide_reconcile_passes_total{result="success"} 1"#,
            #"tide_executor_actions_total{action="deploy",result="succeeded"} 2"#,
            #"tide_fetches_total{result="success"} 1"#, "tide_fetch_last_success_timestamp_seconds ",
            "tide_applied_revision_info{revision=", "tide_reconcile_pass_duration_seconds_bucket{le=",
            "tide_executor_action_duration_seconds_count{action=\"health\"} 2", "tide_dora_deployments{",
            "tide_fetch_failing 0",
        ] {
            #expect(metrics.body.contains(line), "missing \(line) in\n\(metrics.body)")
        }
        let promtool = try await runProcess("/usr/bin/promtool", ["check", "metrics"], input: metrics.body)
        #expect(promtool.status == 0, "\(promtool.combined)")
        #expect(await daemon.stop() == 0)
        #expect(daemon.log().contains("info stopped"))
    }

    @Test(
        "webhooks: a signed push deploys at once; forged, oversized, malformed, other-branch and replayed ones run nothing"
    )
    func webhooks() async throws {
        let remote = try await detached { try Remote() }
        let daemon = try await remote.daemon(["--interval", "1h"])
        #expect(await daemon.waitForLog("info pass "))
        try await remote.repo.fixture.commit("api 1.1.0", files: ["api.yaml": ConfigRepo.service("api", "1.1.0")])
        let push = #"{"ref":"refs/heads/main"}"#

        // Forged, missing and wrong-secret signatures: 401, and nothing runs.
        var forged = await Self.signed(push)
        forged["X-Tide-Signature"] = "sha256=" + String(repeating: "0", count: 64)
        #expect(
            try await daemon.request("POST", "/hooks/generic", headers: forged, body: Array(push.utf8)).status == 401)
        #expect(try await daemon.request("POST", "/hooks/generic", body: Array(push.utf8)).status == 401)
        #expect(
            try await daemon.request(
                "POST", "/hooks/generic", headers: await Self.signed(push, secret: "guess"), body: Array(push.utf8)
            ).status == 401)
        let wrongToken = ["X-Gitlab-Token": "guess", "X-Gitlab-Event": "Push Hook"]
        #expect(
            try await daemon.request("POST", "/hooks/gitlab", headers: wrongToken, body: Array(push.utf8)).status == 401
        )
        // Oversized: refused from its Content-Length, before it is read.
        let big = Array(repeating: UInt8(ascii: " "), count: 2 << 20)
        #expect(
            try await daemon.request("POST", "/hooks/generic", headers: await Self.signed(push), body: big).status
                == 413)
        // Oversized without a Content-Length (chunked): refused while it streams in.
        var chunked = await Self.signed(push)
        chunked["Transfer-Encoding"] = "chunked"
        #expect(try await daemon.request("POST", "/hooks/generic", headers: chunked, body: big).status == 413)
        // Signed but not JSON, and a push to another branch.
        #expect(
            try await daemon.request(
                "POST", "/hooks/generic", headers: await Self.signed("{oops"), body: Array("{oops".utf8)
            )
            .status == 400)
        let other = #"{"ref":"refs/heads/feature"}"#
        let otherResponse = try await daemon.request(
            "POST", "/hooks/generic", headers: await Self.signed(other), body: Array(other.utf8))
        #expect(otherResponse.status == 202 && otherResponse.body.contains("a push to feature, not main"))
        // GitHub's published example: the signature is right, the body is no push (400, not 401).
        let hello = try await daemon.request(
            "POST", "/hooks/github",
            headers: [
                "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                "X-GitHub-Event": "push",
            ], body: Array("Hello, World!".utf8))
        #expect(hello.status == 400, "\(hello.body)")
        try await Task.sleep(for: .seconds(1))
        #expect(remote.repo.calls().count == 4, "something ran: \(remote.repo.calls())")
        #expect(!daemon.log().contains("version=1.1.0"))

        // A good GitHub push deploys within seconds; the same delivery again starts nothing.
        var headers = await Self.signed(push, header: "X-Hub-Signature-256")
        headers["X-GitHub-Event"] = "push"
        headers["X-GitHub-Delivery"] = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
        let good = try await daemon.request("POST", "/hooks/github", headers: headers, body: Array(push.utf8))
        #expect(good.status == 200, "\(good.body)")
        #expect(await daemon.waitForLog("result=success revision=", count: 2, timeout: 20), "\(daemon.log())")
        #expect(remote.repo.calls().suffix(2) == ["deploy api@prod 1.1.0", "health api@prod 1.1.0"])
        let replay = try await daemon.request("POST", "/hooks/github", headers: headers, body: Array(push.utf8))
        #expect(replay.status == 202 && replay.body.contains("seen before"), "\(replay.body)")
        var ping = await Self.signed("{}", header: "X-Hub-Signature-256")
        ping["X-GitHub-Event"] = "ping"
        #expect(
            try await daemon.request("POST", "/hooks/github", headers: ping, body: Array("{}".utf8)).body == "pong\n")

        let metrics = try await daemon.get("/metrics").body
        #expect(metrics.contains(#"tide_webhook_requests_total{provider="generic",result="401"} 3"#), "\(metrics)")
        #expect(metrics.contains(#"tide_webhook_requests_total{provider="generic",result="413"} 2"#))
        #expect(metrics.contains(#"tide_webhook_requests_total{provider="github",result="200"} 2"#))
        #expect(!daemon.log().contains(Self.secret))
        #expect(await daemon.stop() == 0)
    }

    @Test("pushes that arrive during a pass are taken into it: it plans again and deploys the newest commit only")
    func coalescing() async throws {
        let remote = try await detached { try Remote() }
        let base = try String(contentsOfFile: remote.repo.fixture.workTree + "/base.yaml", encoding: .utf8)
        try await remote.repo.fixture.commit(
            "slow executor", files: ["base.yaml": base.replacingOccurrences(of: "timeout: 2s", with: "timeout: 5m")])
        let daemon = try await remote.daemon(["--interval", "1h"])
        #expect(await daemon.waitForLog("info pass "))
        let push = #"{"ref":"refs/heads/main"}"#
        // The first push's pass blocks in an executor ("hold" waits for a release file).
        try await remote.repo.fixture.commit("api hold", files: ["api.yaml": ConfigRepo.service("api", "hold")])
        _ = try await daemon.request("POST", "/hooks/generic", headers: await Self.signed(push), body: Array(push.utf8))
        let deadline = Date().addingTimeInterval(20)
        while !remote.repo.calls().contains("deploy api@prod hold") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        // Five pushes while it runs, the last one asking for 1.3.0.
        for version in ["1.1.0", "1.2.0", "1.3.0"] {
            try await remote.repo.fixture.commit(
                "web \(version)", files: ["web.yaml": ConfigRepo.service("web", version, dependsOn: "[api]")])
        }
        for _ in 0..<5 {
            let response = try await daemon.request(
                "POST", "/hooks/generic", headers: await Self.signed(push), body: Array(push.utf8))
            #expect(response.status == 200)
        }
        try Data().write(to: URL(fileURLWithPath: remote.repo.log + ".release"))
        #expect(await daemon.waitForLog("version=1.3.0", timeout: 20), "\(daemon.log())")
        try await Task.sleep(for: .seconds(2))
        let passes = daemon.log().components(separatedBy: "info pass ").count - 1
        #expect(passes == 2, "the first pass and the held one, which took the pushes in, expected: \(daemon.log())")
        #expect(!remote.repo.calls().contains("deploy web@prod 1.1.0"))
        #expect(await daemon.stop() == 0)
    }

    @Test(
        "SIGTERM during a slow executor action: exit 0, the step stays started, the next start resumes it with the same action id"
    )
    func gracefulShutdown() async throws {
        let remote = try await detached { try Remote() }
        // The executor gets a long timeout; version "hold" waits for a release file.
        let base = try String(contentsOfFile: remote.repo.fixture.workTree + "/base.yaml", encoding: .utf8)
        try await remote.repo.fixture.commit(
            "slow executor", files: ["base.yaml": base.replacingOccurrences(of: "timeout: 2s", with: "timeout: 5m")])
        let first = try await remote.daemon(["--interval", "1h", "--shutdown-timeout", "1s", "--log-format", "json"])
        #expect(await first.waitForLog("\"msg\":\"pass\""))
        try await remote.repo.fixture.commit("api hold", files: ["api.yaml": ConfigRepo.service("api", "hold")])
        let push = #"{"ref":"refs/heads/main"}"#
        _ = try await first.request("POST", "/hooks/generic", headers: await Self.signed(push), body: Array(push.utf8))
        let deadline = Date().addingTimeInterval(20)
        while !remote.repo.calls().contains("deploy api@prod hold") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let started = try #require(
            (try String(contentsOfFile: remote.repo.log, encoding: .utf8)).split(separator: "\n").last {
                $0.hasPrefix("deploy api@prod hold")
            })
        let actionID = try #require(started.split(separator: " ").last.map(String.init))
        let before = Date()
        #expect(await first.stop() == 0, "\(first.log())")
        #expect(Date().timeIntervalSince(before) < 15)
        // Every JSON log line parses; the pass was interrupted, not failed.
        for line in first.log().split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }
        #expect(first.log().contains("\"result\":\"interrupted\""), "\(first.log())")
        let status = try await remote.repo.tide("status", "--json", extra: ["--repo", remote.url])
        #expect(!status.standardOutput.contains("\"phase\" : \"Failed\""), "\(status.standardOutput)")

        try Data().write(to: URL(fileURLWithPath: remote.repo.log + ".release"))
        let second = try await remote.daemon(["--interval", "1h"])
        #expect(await second.waitForLog("info pass "), "\(second.log())")
        let calls = try String(contentsOfFile: remote.repo.log, encoding: .utf8).split(separator: "\n")
        let deploys = calls.filter { $0.hasPrefix("deploy api@prod hold") }
        #expect(deploys.count == 2 && deploys.allSatisfy { $0.hasSuffix(actionID) }, "\(calls)")
        #expect(calls.last?.hasPrefix("health api@prod hold") == true)
        #expect(await second.stop() == 0)
    }

    @Test("operator commands are acted on at once: tide approve while tide run waits at a manual gate")
    func operatorCommands() async throws {
        let repo = try ConfigRepo()
        let prod = """
            apiVersion: tide/v1
            kind: Environment
            metadata: {name: prod}
            spec: {production: true, approval: manual}

            """
        _ = try await repo.tide("reconcile")
        let base = try String(contentsOfFile: repo.fixture.workTree + "/base.yaml", encoding: .utf8)
        let executorOnly = String(base[..<base.range(of: "---")!.lowerBound])
        try await repo.fixture.commit("manual approval", files: ["base.yaml": executorOnly + "---\n" + prod])
        let daemon = try await TideDaemon(
            ["--repo", repo.fixture.repoPath, "--state", repo.state, "--interval", "1h"], in: repo.scratch.path,
            logDirectory: repo.scratch.path)
        #expect(await daemon.waitForLog("info pass "))
        try await repo.fixture.commit("api 1.1.0", files: ["api.yaml": ConfigRepo.service("api", "1.1.0")])
        // A local repository's new commit is seen within a second, without a webhook.
        #expect(await daemon.waitForLog("waiting=", timeout: 20), "\(daemon.log())")
        #expect(!repo.calls().contains("deploy api@prod 1.1.0"))
        let approve = try await repo.tide("approve", "api", "--env", "prod")
        #expect(approve.status == 0, "\(approve.combined)")
        let deadline = Date().addingTimeInterval(10)
        while !repo.calls().contains("deploy api@prod 1.1.0") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(repo.calls().contains("deploy api@prod 1.1.0"), "\(daemon.log())")
        #expect(await daemon.stop() == 0)
    }

    @Test("hooks/post-receive in the bare repository tells tide run of a push: deployed without waiting for a poll")
    func postReceiveHook() async throws {
        let remote = try await detached { try Remote() }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let hook = remote.repo.fixture.repoPath + "/hooks/post-receive"
        try FileManager.default.copyItem(atPath: root.appendingPathComponent("hooks/post-receive").path, toPath: hook)
        let daemon = try await remote.daemon(["--interval", "1h"])
        #expect(await daemon.waitForLog("info pass "))
        for (key, value) in [
            ("tide.url", "http://127.0.0.1:\(daemon.port)"), ("tide.secretFile", remote.secretFile),
            ("tide.binary", TideBinary.path),
        ] {
            try await runProcess("/usr/bin/git", ["--git-dir", remote.repo.fixture.repoPath, "config", key, value])
        }
        _ = try await detached {
            try remote.repo.fixture.commit("api 2.0.0", files: ["api.yaml": ConfigRepo.service("api", "2.0.0")])
        }
        let deadline = Date().addingTimeInterval(20)
        while !remote.repo.calls().contains("deploy api@prod 2.0.0") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(remote.repo.calls().contains("deploy api@prod 2.0.0"), "\(daemon.log())")
        #expect(daemon.log().contains("provider=generic status=200"))
        #expect(await daemon.stop() == 0)
    }

    @Test("a second SIGTERM during a long shutdown exits at once, and the state stays readable")
    func secondSignal() async throws {
        let remote = try await detached { try Remote() }
        let base = try String(contentsOfFile: remote.repo.fixture.workTree + "/base.yaml", encoding: .utf8)
        try await remote.repo.fixture.commit(
            "slow executor", files: ["base.yaml": base.replacingOccurrences(of: "timeout: 2s", with: "timeout: 5m")])
        let daemon = try await remote.daemon(["--interval", "1h", "--shutdown-timeout", "5m"])
        #expect(await daemon.waitForLog("info pass "))
        try await remote.repo.fixture.commit("api hold", files: ["api.yaml": ConfigRepo.service("api", "hold")])
        let push = #"{"ref":"refs/heads/main"}"#
        _ = try await daemon.request("POST", "/hooks/generic", headers: await Self.signed(push), body: Array(push.utf8))
        let deadline = Date().addingTimeInterval(20)
        while !remote.repo.calls().contains("deploy api@prod hold") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(await daemon.stop(timeout: 2) == nil, "the first SIGTERM waits for the action")
        let started = Date()
        #expect(await daemon.stop(timeout: 10) == 1)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(daemon.log().contains("second signal: exiting at once"))
        try Data().write(to: URL(fileURLWithPath: remote.repo.log + ".release"))
        let status = try await remote.repo.tide("status", "--json", extra: ["--repo", remote.url])
        #expect(status.status == 0, "\(status.combined)")
    }

    @Test("bad settings are refused with the flag named, before anything starts")
    func badSettings() async throws {
        let repo = try ConfigRepo()
        // Each run is bounded: a setting that wrongly passed would start a daemon that never returns.
        func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessOutput {
            try await detached {
                try runProcess(
                    "/usr/bin/timeout",
                    ["20", TideBinary.path, "run", "--repo", repo.fixture.repoPath, "--state", repo.state] + arguments,
                    in: repo.scratch.path, environment: environment)
            }
        }
        let emptyGitLab = repo.scratch.appending("secrets")
        try "github: s3cret\ngitlab:\n".write(toFile: emptyGitLab, atomically: true, encoding: .utf8)
        for (arguments, message) in [
            (["--listen", "nowhere"], "--listen: give HOST:PORT"),
            (["--interval", "0s"], "--interval: give a duration"),
            (["--interval", "inf"], "--interval"), (["--log-format", "xml"], "--log-format: give text or json"),
            (["--webhook-secret-file", "/nonexistent"], "cannot read /nonexistent"),
            (["--webhook-secret-file", emptyGitLab], "'gitlab:' has no secret"),
            (["--concurrency", "0"], "--concurrency"), (["--fetch-timeout", "1e300"], "--fetch-timeout"),
        ] {
            let result = try await run(arguments)
            #expect(result.status == 2, "\(arguments): \(result.combined)")
            #expect(result.standardError.contains(message), "\(arguments): \(result.standardError)")
        }
        let env = try await run([], environment: ["TIDE_LISTEN": "bad", "TIDE_INTERVAL": "1m"])
        #expect(env.status == 2 && env.standardError.contains("not 'bad'"), "\(env.combined)")
    }

    @Test(
        "the state file replaced under tide run (a restore by mv): it stops with exit 1 and says why; restarted, it works on the new file (hardening round two, 12)"
    )
    func stateReplaced() async throws {
        let remote = try await detached { try Remote() }
        let daemon = try await remote.daemon(["--interval", "1s"])
        #expect(await daemon.waitForLog("info pass "), "\(daemon.log())")
        // A restore: a copy of the state put in place by rename, as mv does.
        let restored = remote.repo.scratch.appending("restored.sqlite")
        let backup = try await runProcess("/usr/bin/sqlite3", [remote.repo.state, ".backup '\(restored)'"])
        #expect(backup.status == 0, "\(backup.combined)")
        #expect(rename(restored, remote.repo.state) == 0)
        let status = await daemon.waitForExit(timeout: 30)
        #expect(status == 1, "\(daemon.log())")
        #expect(daemon.log().contains("was replaced or removed while tide run had it open"), "\(daemon.log())")

        // Restarted, it uses the new file: a suspension written to it by a verb holds the next deploy.
        let suspended = try await remote.repo.tide(
            "suspend", "api", "--env", "prod", "--comment", "restored", extra: ["--repo", remote.url])
        #expect(suspended.status == 0, "\(suspended.combined)")
        try await remote.repo.fixture.commit("api 1.1.0", files: ["api.yaml": ConfigRepo.service("api", "1.1.0")])
        let again = try await remote.daemon(["--interval", "1s"])
        #expect(await again.waitForLog("info pass ", count: 2), "\(again.log())")
        #expect(!remote.repo.calls().contains("deploy api@prod 1.1.0"), "\(remote.repo.calls())")
        #expect(try await again.get("/healthz").status == 200)
    }
}
