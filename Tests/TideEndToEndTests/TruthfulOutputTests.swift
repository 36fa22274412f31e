import Foundation
import Testing
import TideDocuments
import TideGit
import TideManifest
import TideState
import TideTestSupport

@testable import TideCLI

/// What `tide` prints and records says what happened, in the order it happens: history rows a person can read,
/// status in pipeline order, controls that name who used them, and a `--watch` log that fills as it runs.
@Suite("End to end: status, history, controls and --watch output tell the truth")
struct TruthfulOutputTests {
    /// `service` with a canary strategy, for ConfigRepo's prod environment.
    static func canary(_ service: String, _ version: String, steps: String) -> String {
        ConfigRepo.service(service, version).replacingOccurrences(
            of: "  executor: script\n", with: "  executor: script\n  strategy: {type: canary, steps: \(steps)}\n")
    }

    /// Runs `tide ARGS --repo … --state …` with extra environment variables.
    static func tide(_ repo: ConfigRepo, _ arguments: [String], environment: [String: String]) async throws
        -> ProcessOutput
    {
        try await TideBinary.runDetached(
            arguments + ["--repo", repo.fixture.repoPath, "--state", repo.state], in: repo.scratch.path,
            environment: environment)
    }

    /// The cells of a `table` row, cut at the header's column starts.
    static func cells(_ line: String, starts: [Int]) -> [String] {
        let characters = Array(line)
        return starts.indices.map { index in
            let from = min(starts[index], characters.count)
            let to = index + 1 < starts.count ? min(starts[index + 1], characters.count) : characters.count
            return String(characters[from..<to]).trimmingCharacters(in: .whitespaces)
        }
    }

    static func columnStarts(_ header: String, _ names: [String]) throws -> [Int] {
        let characters = Array(header)
        return try names.map { name in
            let found = (0...(characters.count - name.count)).first {
                String(characters[$0..<($0 + name.count)]) == name
                    && ($0 == 0 || characters[$0 - 1] == " ")
            }
            return try #require(found, "no column \(name) in \(header)")
        }
    }

    @Test("history: the DORA column says ok, failed or -, and why a deployment failed is said once, in MESSAGE")
    func historyColumns() async throws {
        let repo = try ConfigRepo()
        #expect(try await repo.tide("reconcile").status == 0)
        let bump = try await repo.fixture.commit(
            "web 1.1.0", files: ["web.yaml": ConfigRepo.service("web", "1.1.0", dependsOn: "[api]")])
        #expect(try await repo.tide("reconcile").status == 0)
        try await repo.fixture.revert(bump)
        #expect(try await repo.tide("reconcile").status == 0)
        try await repo.fixture.commit(
            "web bad", files: ["web.yaml": ConfigRepo.service("web", "bad", dependsOn: "[api]")])
        #expect(try await repo.tide("reconcile").status == 1)

        // What the deployment ledger says about the two web deployments that needed intervention.
        let events = try #require(
            try repo.json(try await repo.tide("history", "--json", "--service", "web")) as? [[String: Any]])
        for key in ["id", "time", "kind", "message", "countedFailed", "failureReason"] {
            #expect(events.contains { $0[key] != nil }, "history --json lost the key \(key)")
        }
        let failedRun = try #require(events.first { $0["kind"] as? String == "deployment.failed" })
        #expect(failedRun["countedFailed"] as? Bool == true)
        let undone = try #require(
            events.first { $0["kind"] as? String == "deployment.succeeded" && $0["version"] as? String == "1.1.0" })
        #expect(undone["countedFailed"] as? Bool == true)
        let undoneReason = try #require(undone["failureReason"] as? String)

        let text = try await repo.tide("history", "--service", "web")
        #expect(text.status == 0, "\(text.combined)")
        let lines = text.standardOutput.split(separator: "\n").map(String.init)
        let header = try #require(lines.first)
        let names = ["TIME", "TARGET", "EVENT", "VERSION", "CLASS", "REVISION", "DORA", "MESSAGE"]
        let starts = try Self.columnStarts(header, names)
        // The column is as wide as its widest word, "failed", plus the two-space gap.
        #expect(starts[7] - starts[6] == "failed".count + 2, "\(header)")
        let rows = lines.dropFirst().map { Self.cells($0, starts: starts) }
        #expect(rows.count == events.count)
        for row in rows {
            #expect(["ok", "failed", "-"].contains(row[6]), "DORA column: \(row)")
            let counted = row[2] == "deployment.succeeded" || row[2] == "deployment.failed"
            #expect(counted == (row[6] != "-"), "\(row)")
        }

        let failedRow = try #require(rows.first { $0[2] == "deployment.failed" })
        #expect(failedRow[6] == "failed")
        #expect(failedRow[7].contains("cannot pull image bad"))
        let failedLine = try #require(lines.first { $0.contains("deployment.failed") })
        #expect(failedLine.components(separatedBy: "cannot pull image bad").count == 2, "said once: \(failedLine)")

        let undoneRow = try #require(rows.first { $0[2] == "deployment.succeeded" && $0[3] == "1.0.0 → 1.1.0" })
        #expect(undoneRow[6] == "failed")
        #expect(undoneRow[7].hasSuffix("; counted failed: \(undoneReason)"), "\(undoneRow)")
        let liveRow = try #require(rows.last { $0[2] == "deployment.succeeded" })
        #expect(liveRow[6] == "ok", "the first web deployment was never undone: \(liveRow)")
    }

    @Test("status lists targets in pipeline order: environments by requires, services by dependsOn")
    func statusPipelineOrder() async throws {
        let repo = try ConfigRepo()
        let base = try String(contentsOfFile: repo.fixture.workTree + "/base.yaml", encoding: .utf8)
            .replacingOccurrences(
                of: "metadata: {name: prod}\nspec: {production: true}\n",
                with: """
                    metadata: {name: zeta}
                    spec: {}
                    ---
                    apiVersion: tide/v1
                    kind: Environment
                    metadata: {name: beta}
                    spec: {requires: [zeta]}
                    ---
                    apiVersion: tide/v1
                    kind: Environment
                    metadata: {name: alpha}
                    spec: {requires: [beta], production: true, approval: manual}

                    """)
        #expect(base.contains("name: alpha"))
        func service(_ name: String, dependsOn: String) -> String {
            ConfigRepo.service(name, "1.0.0", dependsOn: dependsOn).replacingOccurrences(
                of: "environments: {prod: {}}", with: "environments: {zeta: {}, beta: {}, alpha: {}}")
        }
        try await repo.fixture.commit(
            "pipeline",
            files: [
                "base.yaml": base, "store.yaml": service("store", dependsOn: "[]"),
                "api.yaml": service("api", dependsOn: "[store]"), "web.yaml": service("web", dependsOn: "[api]"),
            ])
        let reconciled = try await repo.tide("reconcile")
        #expect(reconciled.status == 0, "\(reconciled.combined)")

        let expected = ["zeta", "beta", "alpha"].flatMap { environment in
            ["store", "api", "web"].map { "\($0)@\(environment)" }
        }
        let status = try await repo.tide("status")
        #expect(status.status == 0, "\(status.combined)")
        let lines = status.standardOutput.split(separator: "\n").map(String.init)
        let header = try #require(lines.firstIndex { $0.hasPrefix("TARGET ") })
        let rows = lines[(header + 1)...]
        #expect(rows.map { String($0.prefix { $0 != " " }) } == expected)

        let json = try #require(try repo.json(try await repo.tide("status", "--json")) as? [String: Any])
        let targets = try #require(json["targets"] as? [[String: Any]])
        #expect(targets.map { "\($0["service"] as? String ?? "")@\($0["environment"] as? String ?? "")" } == expected)

        // alpha waits for approval, and says so once.
        let storeAlpha = try #require(rows.first { $0.hasPrefix("store@alpha ") })
        #expect(storeAlpha.contains("blocked by approval"))
        #expect(storeAlpha.hasSuffix("waiting for approval: tide approve store --env alpha --version 1.0.0"))
        #expect(!status.standardOutput.contains("waiting: waiting"))
    }

    @Test("status puts targets only the live state still has after the desired ones")
    func liveOnlyTargetsLast() async throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let fixture = try GitFixture()
        let commit = try await fixture.commit(
            "pipeline",
            files: [
                "pipeline.yaml": """
                apiVersion: tide/v1
                kind: Executor
                metadata: {name: local}
                spec: {type: command, command: ["true"]}
                ---
                apiVersion: tide/v1
                kind: Environment
                metadata: {name: qa}
                spec: {}
                ---
                apiVersion: tide/v1
                kind: Environment
                metadata: {name: prod}
                spec: {requires: [qa]}
                ---
                apiVersion: tide/v1
                kind: Service
                metadata: {name: web}
                spec: {executor: local, version: "1", environments: {qa: {}, prod: {}}}

                """
            ])
        let desired = try ManifestLoader().load(
            from: GitCommitSource(repository: try Repository.open(at: fixture.repoPath), commit: commit, root: ""))
        func live(_ service: String, _ environment: String) -> LiveTarget {
            LiveTarget(
                id: TargetID(service: service, environment: environment), executor: "local", phase: .healthy,
                version: "1", updatedAt: now)
        }
        let stored = [live("old", "prod"), live("web", "prod"), live("old", "qa"), live("web", "qa")]
        #expect(
            StatusDocument.pipelineOrder(stored, desired: desired).map(\.id.description)
                == ["web@qa", "web@prod", "old@prod", "old@qa"])
        #expect(StatusDocument.pipelineOrder(stored, desired: nil).map(\.id) == stored.map(\.id))
    }

    @Test(
        "pause, resume, promote, abort and retry record the user running tide: --by, $TIDE_USER and git's user cannot impersonate"
    )
    func controlsRecordWho() async throws {
        let repo = try ConfigRepo()
        let steps = "[{setWeight: 20}, {pause: {}}, {setWeight: 60}, {pause: {}}]"
        try await repo.fixture.commit("canary", files: ["api.yaml": Self.canary("api", "1.0.0", steps: steps)])
        #expect(try await repo.tide("reconcile").status == 0)
        try await repo.fixture.commit("api 2.0.0", files: ["api.yaml": Self.canary("api", "2.0.0", steps: steps)])
        #expect(try await repo.tide("reconcile").status == 0)

        let me = NSUserName()
        let api = ["api", "--env", "prod"]
        let runs: [([String], [String: String])] = [
            (["pause"] + api, ["TIDE_USER": "alice"]),
            (["resume"] + api + ["--by", "bob"], ["TIDE_USER": "alice"]),
            (["promote"] + api + ["--comment", "looks good"], [:]),
            (["abort"] + api, ["SUDO_USER": "carol"]),
        ]
        for (arguments, environment) in runs {
            let result = try await Self.tide(repo, arguments, environment: environment)
            #expect(result.status == 0, "\(arguments): \(result.combined)")
        }
        try await repo.fixture.commit("api bad", files: ["api.yaml": Self.canary("api", "bad", steps: steps)])
        #expect(try await repo.tide("reconcile").status == 1)
        let retried = try await Self.tide(repo, ["retry"] + api + ["--by", "dave"], environment: [:])
        #expect(retried.standardOutput.contains("api@prod: bad will be tried again"), "\(retried.combined)")

        let events = try #require(try repo.json(try await repo.tide("history", "--json")) as? [[String: Any]])
        // (kind, who the record names, the comment kept)
        let expected: [(kind: String, by: String, comment: String?)] = [
            ("rollout.paused", me, nil), ("rollout.resumed", me, "for bob"),
            ("rollout.promoted", me, "looks good"), ("rollout.aborted", "\(me) (sudo from carol)", nil),
            ("rollout.retried", me, "for dave"),
        ]
        for (kind, by, comment) in expected {
            let event = try #require(events.first { $0["kind"] as? String == kind }, "no \(kind) event")
            let details = event["details"] as? [String: Any]
            #expect(details?["by"] as? String == by, "\(kind): \(event)")
            #expect(details?["comment"] as? String == comment, "\(kind): \(event)")
            #expect(details?["uid"] as? Int == Int(getuid()), "\(kind): \(event)")
            let suffix = comment.map { "(by \(by): \($0))" } ?? "(by \(by))"
            #expect((event["message"] as? String)?.hasSuffix(suffix) == true, "\(kind): \(event)")
        }
        let text = events.map { "\($0)" }.joined()
        #expect(!text.contains("alice") && !text.contains("Test Author"), "nobody can be named by a variable or git")
    }

    @Test("reconcile --watch with stdout in a file: each line is there while tide still waits for the pause")
    func watchFlushesEachLine() async throws {
        let repo = try ConfigRepo()
        let steps = "[{setWeight: 20}, {pause: 10m}, {setWeight: 60}]"
        try await repo.fixture.commit("canary", files: ["api.yaml": Self.canary("api", "1.0.0", steps: steps)])
        #expect(try await repo.tide("reconcile").status == 0)
        try await repo.fixture.commit("api 2.0.0", files: ["api.yaml": Self.canary("api", "2.0.0", steps: steps)])

        let log = repo.scratch.appending("watch.log")
        let pid = try Self.spawn(
            TideBinary.path, ["reconcile", "--watch", "--repo", repo.fixture.repoPath, "--state", repo.state],
            standardOutput: log)
        var exited = false
        defer {
            if !exited {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            }
        }
        var text = ""
        let deadline = Date().addingTimeInterval(90)
        while !text.contains("next pass at") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
            text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        }
        var status: Int32 = 0
        let running = waitpid(pid, &status, WNOHANG) == 0
        #expect(running, "tide reconcile --watch exited during a 10-minute pause (status \(status))")
        #expect(text.contains("api@prod: progressing 2.0.0 [FEATURE]"), "stdout so far: \(text)")
        #expect(text.contains("next pass at"), "stdout so far: \(text)")
        #expect(text.hasSuffix("\n"), "only whole lines: \(text)")
        if running {
            kill(pid, SIGTERM)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        exited = true
    }

    /// Starts a program with stdout written to `standardOutput` (stdin and stderr /dev/null) and returns at once.
    /// posix_spawn rather than Foundation's Process, which can miss a child's exit (see `runProcess`).
    static func spawn(_ executable: String, _ arguments: [String], standardOutput: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, standardOutput, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else {
            throw FixtureError("cannot run \(executable): \(String(cString: strerror(spawned)))")
        }
        return pid
    }
}
