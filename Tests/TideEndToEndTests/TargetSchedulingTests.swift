import Foundation
import Testing
import TideGit
import TideTestSupport

/// Targets progress on their own in `tide run`: while one target's long action runs, an abort of another target,
/// an approval and a push are acted on at once — not when the pass that runs the long action ends.
///
/// What must never happen: an operator's request waiting for other targets' actions; a rollout taking its next
/// step after an abort was asked for; a push waiting for a pass under way; two runs of one target at once.
@Suite("End to end: targets progress on their own in tide run", .serialized)
struct TargetSchedulingTests {
    /// Logs each action's start and end; `deploy` of a service with a `LOG.slow-SERVICE` file takes 15 s, each
    /// `set-weight` of one with `LOG.steps-SERVICE` takes 1 s.
    static let script = """
        #!/bin/sh
        echo "start $TIDE_ACTION $TIDE_SERVICE $TIDE_VERSION w=$TIDE_WEIGHT id=$TIDE_ACTION_ID" >> "$LOG"
        if [ "$TIDE_ACTION" = deploy ] && [ -f "$LOG.slow-$TIDE_SERVICE" ]; then sleep 15; fi
        if [ "$TIDE_ACTION" = set-weight ] && [ -f "$LOG.steps-$TIDE_SERVICE" ]; then sleep 1; fi
        echo "end $TIDE_ACTION $TIDE_SERVICE $TIDE_VERSION w=$TIDE_WEIGHT id=$TIDE_ACTION_ID" >> "$LOG"

        """

    static func manifests(script: String, log: String, versions: [String: String]) -> String {
        func service(_ name: String, _ environment: String, strategy: String = "") -> String {
            """
            ---
            apiVersion: tide/v1
            kind: Service
            metadata: {name: \(name)}
            spec:
              executor: sleeper
              version: "\(versions[name] ?? "1.0.0")"
              environments: {\(environment): {}}
            \(strategy)
            """
        }
        return """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: sleeper}
            spec: {type: command, command: ["\(script)"], timeout: 60s, env: {LOG: "\(log)"}}
            ---
            apiVersion: tide/v1
            kind: Environment
            metadata: {name: dev}
            spec: {}
            ---
            apiVersion: tide/v1
            kind: Environment
            metadata: {name: gated}
            spec: {approval: manual}

            """
                + service("slow", "dev") + service("late", "dev") + service("gate", "gated")
                + service(
                    "cnry", "dev",
                    strategy: "  strategy: {type: canary, steps: [{setWeight: 20}, {setWeight: 40}, {setWeight: 60}, "
                        + "{setWeight: 80}]}\n")
    }

    @Test("an abort, an approval and a push during another target's 15-s deploy are each acted on within seconds")
    func requestsDuringALongAction() async throws {
        let remote = try await detached { try ServiceTests.Remote() }
        let repo = remote.repo
        let log = repo.scratch.appending("sleeper.log")
        let script = repo.scratch.appending("sleeper.sh")
        try Data(Self.script.utf8).write(to: URL(fileURLWithPath: script))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        func commit(_ versions: [String: String]) async throws {
            try await repo.fixture.commit(
                "versions \(versions)",
                files: ["sched.yaml": Self.manifests(script: script, log: log, versions: versions)])
        }
        func lines() -> [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        func waitFor(_ line: String, timeout: Double = 30) async throws -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if lines().contains(where: { $0.hasPrefix(line + " ") }) { return true }
                try await Task.sleep(for: .milliseconds(50))
            }
            return false
        }
        func push(_ daemon: TideDaemon) async throws {
            let body = #"{"ref": "refs/heads/main"}"#
            _ = try await daemon.request(
                "POST", "/hooks/generic", headers: await ServiceTests.signed(body), body: Array(body.utf8))
        }
        func tide(_ arguments: String...) async throws -> ProcessOutput {
            try await TideBinary.runDetached(
                arguments + ["--repo", remote.url, "--state", repo.state], in: repo.scratch.path)
        }

        try await commit([:])
        let daemon = try await remote.daemon(["--interval", "1h"])
        #expect(try await waitFor("end deploy late 1.0.0"), "\(lines())")
        #expect(try await tide("approve", "gate", "--env", "gated").status == 0)
        #expect(try await waitFor("end deploy gate 1.0.0"), "\(lines())")
        #expect(try await waitFor("end deploy cnry 1.0.0"), "\(lines())")

        // slow's deploy takes 15 s; cnry's steps 1 s each; gate waits for an approval.
        for flag in ["slow-slow", "steps-cnry"] {
            _ = FileManager.default.createFile(atPath: "\(log).\(flag)", contents: nil)
        }
        try await commit(["slow": "2.0.0", "cnry": "2.0.0", "gate": "2.0.0"])
        try await push(daemon)
        #expect(try await waitFor("start set-weight cnry 2.0.0"), "\(lines())")
        #expect(try await waitFor("start deploy slow 2.0.0"), "\(lines())")

        // The abort is carried out when cnry's current step returns (≤ 1 s), not when the pass ends.
        let abortStart = ContinuousClock.now
        let aborted = try await tide("abort", "cnry", "--env", "dev")
        let abortTook = ContinuousClock.now - abortStart
        #expect(aborted.status == 0, "\(aborted.combined)")
        #expect(abortTook < .seconds(5), "the abort took \(abortTook): \(aborted.combined)")
        #expect(lines().contains { $0.hasPrefix("end rollback cnry 1.0.0 ") }, "\(lines())")
        let weights = lines().filter { $0.hasPrefix("start set-weight cnry 2.0.0") }.count
        #expect(weights <= 2, "cnry went on stepping after the abort was asked for: \(lines())")

        // An approval of another target starts its deployment beside slow's.
        #expect(try await tide("approve", "gate", "--env", "gated").status == 0)
        #expect(try await waitFor("end deploy gate 2.0.0", timeout: 8), "\(lines())")

        // A push during the pass: late deploys beside slow's deploy.
        try await commit(["slow": "2.0.0", "cnry": "2.0.0", "gate": "2.0.0", "late": "2.0.0"])
        try await push(daemon)
        #expect(try await waitFor("end deploy late 2.0.0", timeout: 8), "\(lines())")
        #expect(
            !lines().contains { $0.hasPrefix("end deploy slow 2.0.0 ") },
            "slow ended first; the test proves nothing: \(lines())")

        // Everything settles as asked: cnry back on 1.0.0 with 2.0.0 held, the others on 2.0.0; no action twice.
        #expect(try await waitFor("end deploy slow 2.0.0"), "\(lines())")
        let deadline = Date().addingTimeInterval(20)
        var targets: [[String: Any]] = []
        while Date() < deadline {
            let status = try await tide("status", "--json")
            targets = ((try? repo.json(status)) as? [String: Any])?["targets"] as? [[String: Any]] ?? []
            let phases = Dictionary(
                targets.map { ("\($0["service"] ?? "")", "\($0["phase"] ?? "") \($0["version"] ?? "")") },
                uniquingKeysWith: { first, _ in first })
            if phases["slow"] == "Healthy 2.0.0", phases["late"] == "Healthy 2.0.0", phases["gate"] == "Healthy 2.0.0",
                phases["cnry"]?.hasSuffix(" 1.0.0") == true
            {
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(
            targets.contains { $0["service"] as? String == "cnry" && $0["version"] as? String == "1.0.0" },
            "\(targets)")
        for service in ["slow", "late", "gate"] {
            #expect(
                targets.contains { $0["service"] as? String == service && $0["version"] as? String == "2.0.0" },
                "\(service): \(targets)")
        }
        let starts = lines().filter { $0.hasPrefix("start ") }
        let twice = Dictionary(grouping: starts, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
        #expect(twice.isEmpty, "ran twice: \(twice) in \(lines())")
        #expect(await daemon.stop() == 0)
    }
}
