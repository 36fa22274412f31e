import Foundation
import Testing
import TideTestSupport

/// `kill -9` of Tide in the middle of every strategy's rollout, then a restart at once — while the killed Tide's
/// executor process is still running. The executor logs when each call begins and ends (and when it is stopped),
/// so its own log shows whether two calls ever overlapped or a finished step ran again.
@Suite("End to end: kill -9 in the middle of every strategy, and of a migration", .serialized)
struct KillNineTests {
    /// An executor that logs `begin|end|killed ACTION VERSION ACTION_ID PID`, holds the Nth call for version
    /// 2.0.0 (N in `$LOG.hold-at`) until `$LOG.release` exists, and answers `measure` with 0.
    static let script = """
        #!/bin/sh
        trap 'echo "killed $TIDE_ACTION $TIDE_VERSION $TIDE_ACTION_ID $$" >> "$LOG"; exit 143' TERM
        # Not to the killed Tide's pipe: the shell's "Terminated" would die of SIGPIPE before the trap logs.
        exec 2>> "$LOG.stderr"
        echo "begin $TIDE_ACTION $TIDE_VERSION $TIDE_ACTION_ID $$" >> "$LOG"
        if [ "$TIDE_VERSION" = 2.0.0 ] && [ -f "$LOG.hold-at" ]; then
          n=$(grep -c "^begin [a-z-]* 2.0.0 " "$LOG")
          if [ "$n" = "$(cat "$LOG.hold-at")" ]; then
            echo "holding $TIDE_ACTION $TIDE_VERSION $TIDE_ACTION_ID $$" >> "$LOG"
            while [ ! -f "$LOG.release" ]; do sleep 0.05; done
          fi
        fi
        [ "$TIDE_ACTION" = measure ] && echo 0
        echo "end $TIDE_ACTION $TIDE_VERSION $TIDE_ACTION_ID $$" >> "$LOG"
        exit 0

        """

    /// Each strategy, and which call of its 2.0.0 rollout is held when Tide is killed (past deploy and health,
    /// where the strategy's own steps are).
    static let strategies: [(name: String, spec: String, holdAt: Int, action: String)] = [
        ("recreate", "{type: recreate}", 2, "health"),
        ("rolling", "{type: rolling, batches: [\"50%\", \"100%\"]}", 3, "promote"),
        ("blue-green", "{type: blue-green, autoPromotion: true, scaleDownDelay: 1s}", 3, "promote"),
        ("canary", "{type: canary, steps: [{setWeight: 25}, {setWeight: 75}]}", 3, "set-weight"),
        ("shadow", "{type: shadow, mirror: 50, duration: 1s, analysis: ok}", 3, "mirror"),
        ("ab", "{type: ab, match: {header: {name: x-beta, value: \"1\"}}, duration: 1s, analysis: ok}", 3, "split"),
    ]

    struct LogLine: Equatable {
        var event: String
        var action: String
        var version: String
        var actionID: String
        var pid: String
    }

    static func lines(_ path: String) -> [LogLine] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 5 else { return nil }
            return LogLine(event: words[0], action: words[1], version: words[2], actionID: words[3], pid: words[4])
        }
    }

    /// Problems in an executor log: a call beginning while another is still running, a call never ending, a
    /// finished action id run again.
    static func problems(_ log: [LogLine]) -> [String] {
        var problems: [String] = []
        var running: [String: LogLine] = [:]  // by pid
        var finished: Set<String> = []
        for line in log {
            switch line.event {
            case "begin":
                if let other = running.values.first {
                    problems.append("\(line.action) \(line.actionID) began while \(other.action) \(other.actionID) ran")
                }
                if finished.contains(line.actionID) {
                    problems.append("\(line.action) \(line.actionID) ran again after it finished")
                }
                running[line.pid] = line
            case "end":
                running[line.pid] = nil
                finished.insert(line.actionID)
            case "holding":
                break
            default:
                running[line.pid] = nil
            }
        }
        problems += running.values.map { "\($0.action) \($0.actionID) never ended" }
        return problems
    }

    @Test("a killed Tide's executor is stopped before its step runs again: no overlap, no step twice", arguments: 0..<6)
    func strategy(_ index: Int) async throws {
        let (name, spec, holdAt, action) = Self.strategies[index]
        let scratch = try TemporaryDirectory("tide-kill9")
        let log = scratch.appending("executor.log")
        let state = scratch.appending("state.sqlite")
        let script = scratch.appending("executor.sh")
        try Data(Self.script.utf8).write(to: URL(fileURLWithPath: script))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        let fixture = try GitFixture()
        let service = { (version: String) in
            """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: api}
            spec:
              executor: script
              version: "\(version)"
              environments: {prod: {}}
              strategy: \(spec)

            """
        }
        try fixture.write(
            "base.yaml",
            """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: script}
            spec:
              type: command
              command: ["\(script)"]
              timeout: 120s
              env: {LOG: "\(log)"}
            ---
            apiVersion: tide/v1
            kind: Environment
            metadata: {name: prod}
            spec: {production: true}
            ---
            apiVersion: tide/v1
            kind: Analysis
            metadata: {name: ok}
            spec:
              count: 1
              interval: 1s
              metrics:
                - name: errors
                  provider: {command: {command: ["/bin/echo", "0"]}}
                  successCondition: "result < 1"

            """)
        try fixture.write("api.yaml", service("1.0.0"))
        try await fixture.commit("api 1.0.0")
        func tide(_ arguments: String...) async throws -> ProcessOutput {
            try await TideBinary.runDetached(
                arguments + ["--repo", fixture.repoPath, "--state", state], in: scratch.path)
        }
        let first = try await tide("reconcile", "--watch")
        #expect(first.status == 0, "\(first.combined)")

        // One call of the 2.0.0 rollout holds; Tide is killed while it runs.
        try await fixture.commit("api 2.0.0", files: ["api.yaml": service("2.0.0")])
        try "\(holdAt)".write(toFile: log + ".hold-at", atomically: true, encoding: .utf8)
        let killed = try BackgroundProcess(
            TideBinary.path, ["reconcile", "--watch", "--repo", fixture.repoPath, "--state", state],
            in: scratch.path, output: scratch.appending("killed.out"))
        var held: LogLine?
        for _ in 0..<1200 {
            // The script says so once it holds: a kill between its "begin" and its look at the hold file would
            // otherwise let it through.
            held = Self.lines(log).first { $0.event == "holding" }
            if held != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let orphan = try #require(held, "\(name): call \(holdAt) never came: \(Self.lines(log))")
        #expect(orphan.action == action, "\(name)")
        killed.signal(SIGKILL)
        #expect(await killed.waitForExit(timeout: 10) == 128 + SIGKILL)
        #expect(kill(Int32(orphan.pid) ?? 0, 0) == 0, "the held executor process outlives the killed Tide")
        try FileManager.default.removeItem(atPath: log + ".hold-at")

        // Restarted at once, with the orphan still holding.
        let restarted = try await tide("reconcile", "--watch")
        #expect(restarted.status == 0, "\(name): \(restarted.combined)")
        // Had the orphan been left running, it would log its end now.
        try Data().write(to: URL(fileURLWithPath: log + ".release"))
        try await Task.sleep(for: .milliseconds(500))

        let lines = Self.lines(log)
        #expect(Self.problems(lines) == [], "\(name): \(lines.map { "\($0.event) \($0.action) \($0.actionID)" })")
        let stopped = lines.filter { $0.event == "killed" }
        #expect(stopped.map(\.pid) == [orphan.pid], "\(name): \(lines)")
        // The interrupted step ran again, under the same action id.
        let rerun = lines.filter { $0.event == "end" && $0.actionID == orphan.actionID }
        #expect(rerun.count == 1, "\(name): \(lines)")
        let status = try await tide("status", "--json")
        #expect(status.standardOutput.contains("\"version\" : \"2.0.0\""), "\(status.standardOutput)")
        let history = try await tide("history", "--all", "--json")
        #expect(history.standardOutput.contains("step.orphans-stopped"), "\(history.standardOutput)")
    }

    @Test(
        "kill -9 in the middle of a migration's backfill, restart at once: each phase applied once, nothing half-done",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func migration(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try await db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
            "CREATE TABLE audit (phase TEXT NOT NULL)", "INSERT INTO users (id, name) VALUES (1, 'ada')")
        // Several seconds of work after the backfill's first write, in the same transaction.
        let slow =
            backend == .postgres
            ? "SELECT pg_sleep(5)"
            : "WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x + 1 FROM c WHERE x < 10000000) SELECT max(x) FROM c"
        let repo = try ConfigRepo()
        let files = [
            "db.yaml": """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: orders-db}
            spec: {type: sql, url: "\(db.url)"}
            ---
            apiVersion: tide/v1
            kind: Migration
            metadata: {name: add-email}
            spec:
              executor: orders-db
              expand: {up: ["ALTER TABLE users ADD COLUMN email TEXT", "INSERT INTO audit (phase) VALUES ('expand')"]}
              backfill:
                up:
                  - "UPDATE users SET email = name || '@example.com' WHERE email IS NULL"
                  - "INSERT INTO audit (phase) VALUES ('backfill')"
                  - "\(slow)"

            """,
            "api.yaml": ConfigRepo.service("api", "2.0") + "  migrations: [add-email]\n",
        ]
        try await repo.fixture.commit("api 2.0 needs add-email", files: files)
        let killed = try BackgroundProcess(
            TideBinary.path, ["reconcile", "--repo", repo.fixture.repoPath, "--state", repo.state],
            in: repo.scratch.path, output: repo.scratch.appending("killed.out"))
        // The expand takes milliseconds, the backfill's slow statement several seconds: 1 s after the start Tide
        // is in the middle of it. (SQLite's history cannot be read while the backfill's transaction holds the
        // file.) The kill comes from a dispatch timer: the test's own task may wait long for a pool thread.
        let wasRunning = await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + 1) {
                let running = killed.isRunning
                killed.signal(SIGKILL)
                done.resume(returning: running)
            }
        }
        #expect(wasRunning, "the migration finished before the kill")
        #expect(await killed.waitForExit(timeout: 10) == 128 + SIGKILL)
        let before = try await db.history()
        #expect(!before.contains("add-email|backfill"), "\(before)")
        #expect(try await db.query("SELECT phase FROM audit ORDER BY phase").filter { $0 == "backfill" } == [])

        let restarted = try await repo.tide("reconcile")
        #expect(restarted.status == 0, "\(restarted.combined)")
        let phases = try await db.history().filter { !$0.hasSuffix("|use") }
        #expect(phases.filter { $0 == "add-email|expand" }.count == 1, "\(phases)")
        #expect(phases.filter { $0 == "add-email|backfill" }.count == 1, "\(phases)")
        // The killed backfill's write was rolled back with it; the re-run's is the only one.
        #expect(try await db.query("SELECT phase FROM audit ORDER BY phase") == ["backfill", "expand"])
        #expect(try await db.query("SELECT email FROM users") == ["ada@example.com"])
        if backend == .postgres {
            // The killed Tide's statement does not run on for nobody.
            let lingering = try await db.query(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(5)%' AND pid <> pg_backend_pid()")
            #expect(lingering == ["0"], "\(lingering)")
        }
    }

    @Test("kill -9 while a plugin serves an action: the orphaned plugin is stopped before the action runs again")
    func plugin() async throws {
        let repo = try ConfigRepo()
        let log = repo.scratch.appending("plugin.log")
        let script = repo.scratch.appending("plugin.py")
        // Logs begin/end per action; a 2.0.0 health check started while the hold file exists waits for the release
        // file; logs when stopped.
        try Data(
            #"""
            import json, os, signal, sys, time
            log = open(os.environ["PLUGIN_LOG"], "a")
            def stopped(number, frame):
                log.write("killed %d\n" % os.getpid()); log.flush(); sys.exit(143)
            signal.signal(signal.SIGTERM, stopped)
            for line in sys.stdin:
                request = json.loads(line)
                action = "%s %s %s %d" % (request["action"], request["version"], request["actionId"], os.getpid())
                log.write("begin " + action + "\n"); log.flush()
                if request["version"] == "2.0.0" and request["action"] == "health" \
                        and os.path.exists(os.environ["PLUGIN_LOG"] + ".hold"):
                    while not os.path.exists(os.environ["PLUGIN_LOG"] + ".release"):
                        time.sleep(0.05)
                log.write("end " + action + "\n"); log.flush()
                print(json.dumps({"actionId": request["actionId"], "ok": True}), flush=True)
            """#.utf8
        ).write(to: URL(fileURLWithPath: script))
        let plugin = """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: platform}
            spec:
              type: plugin
              command: ["python3", "\(script)"]
              timeout: 120s
              env: {PLUGIN_LOG: "\(log)"}

            """
        func api(_ version: String) -> String {
            ConfigRepo.service("api", version).replacingOccurrences(of: "executor: script", with: "executor: platform")
        }
        try await repo.fixture.commit("plugin", files: ["plugin.yaml": plugin, "api.yaml": api("1.0.0")])
        #expect(try await repo.tide("reconcile").status == 0)
        try await repo.fixture.commit("api 2.0.0", files: ["api.yaml": api("2.0.0")])
        try Data().write(to: URL(fileURLWithPath: log + ".hold"))
        let killed = try BackgroundProcess(
            TideBinary.path, ["reconcile", "--repo", repo.fixture.repoPath, "--state", repo.state],
            in: repo.scratch.path)
        func lines() -> [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        var held: String?
        for _ in 0..<1200 where held == nil {
            held = lines().first { $0.hasPrefix("begin health 2.0.0") }
            if held == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let orphan = try #require(held?.split(separator: " ").last.map(String.init), "\(lines())")
        killed.signal(SIGKILL)
        #expect(await killed.waitForExit(timeout: 10) == 128 + SIGKILL)
        #expect(kill(Int32(orphan) ?? 0, 0) == 0, "the plugin outlives the killed Tide while it holds the action")
        try FileManager.default.removeItem(atPath: log + ".hold")

        let restarted = try await repo.tide("reconcile")
        #expect(restarted.status == 0, "\(restarted.combined)")
        // Had the orphan been left running, it would finish its action now.
        try Data().write(to: URL(fileURLWithPath: log + ".release"))
        try await Task.sleep(for: .milliseconds(500))
        let all = lines()
        // The orphan was stopped before the health check began again in a new plugin process.
        let stoppedAt = all.firstIndex(of: "killed \(orphan)")
        let rerunAt = all.lastIndex { $0.hasPrefix("begin health 2.0.0") }
        #expect(stoppedAt != nil, "\(all)")
        #expect((stoppedAt ?? Int.max) < (rerunAt ?? -1), "\(all)")
        #expect(!all.contains { $0.hasPrefix("end health 2.0.0") && $0.hasSuffix(" \(orphan)") }, "\(all)")
    }
}
