import Foundation
import Testing
import TideTestSupport

/// Migrations through the tide binary, on both databases: two tide processes with state files of their own
/// reconcile the same config repo against one database at the same time, and each phase runs once.
@Suite("End to end: migrations through the tide binary")
struct MigrationEndToEndTests {
    @Test("two concurrent tide processes apply each phase once", arguments: SQLDatabaseFixture.Backend.allCases)
    func concurrentProcesses(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try await db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legacy TEXT)",
            "INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob')")
        let repo = try ConfigRepo()
        try await repo.fixture.commit(
            "api 2.0 needs add-email",
            files: [
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
                  expand: {up: ["ALTER TABLE users ADD COLUMN email TEXT"], down: ["ALTER TABLE users DROP COLUMN email"]}
                  backfill: {up: ["UPDATE users SET email = name || '@example.com' WHERE email IS NULL"]}
                  contract: {up: ["ALTER TABLE users DROP COLUMN legacy"]}

                """,
                "api.yaml": ConfigRepo.service("api", "2.0") + "  migrations: [add-email]\n",
            ])
        // The warning-free manifest validates; a destructive expand would have been named here.
        let validate = try await repo.tide("validate")
        #expect(validate.status == 0 && !validate.standardError.contains("warning"), "\(validate.combined)")
        let readiness = try await repo.tide("readiness", "api", "--env", "prod")
        #expect(
            readiness.standardOutput.contains("the contract of add-email has not run: a rollback runs expand's down"),
            "\(readiness.combined)")
        let states = [repo.scratch.appending("a.sqlite"), repo.scratch.appending("b.sqlite")]
        func reconcile(_ state: String) async throws -> ProcessOutput {
            try await TideBinary.runDetached(
                ["reconcile", "--repo", repo.fixture.repoPath, "--state", state], in: repo.scratch.path)
        }
        async let first = reconcile(states[0])
        async let second = reconcile(states[1])
        let results = try await [first, second]
        for result in results { #expect(result.status == 0, "\(result.standardError)") }
        // The other says it uses the migration, then (its api healthy on it) that it is ready: then the owner
        // contracts.
        var later: [ProcessOutput] = []
        for state in states + states {
            let output = try await reconcile(state)
            #expect(output.status == 0, "\(output.standardError)")
            later.append(output)
        }
        // Each phase once, by the install that expanded it.
        let history = try await db.history()
        #expect(
            history.filter { !$0.hasSuffix("|use") && !$0.hasSuffix("|ready") } == [
                "add-email|expand", "add-email|backfill", "add-email|contract",
            ], "\(history)")
        #expect(history.filter { $0.hasSuffix("|use") }.count <= 1, "\(history)")
        #expect(try await db.columns("users") == ["id", "name", "email"])
        // One pass of one of them ran the contract; the others found it done (and say nothing about it).
        #expect(
            (results + later).filter { $0.standardOutput.contains("add-email@prod: contract applied") }.count == 1,
            "\((results + later).map(\.standardOutput))")
    }

    @Test("tide validate and tide plan warn about a destructive expand")
    func lintThroughTheCLI() async throws {
        let repo = try ConfigRepo()
        try await repo.fixture.commit(
            "a destructive expand",
            files: [
                "db.yaml": """
                apiVersion: tide/v1
                kind: Executor
                metadata: {name: orders-db}
                spec: {type: sql, url: "sqlite:orders.sqlite"}
                ---
                apiVersion: tide/v1
                kind: Migration
                metadata: {name: drop-mail}
                spec:
                  executor: orders-db
                  expand: {up: ["ALTER TABLE users DROP COLUMN mail"]}

                """
            ])
        let validate = try await repo.tide("validate")
        #expect(validate.status == 0)
        #expect(
            validate.standardError.contains(
                "warning: db.yaml:11:11: Migration 'drop-mail': spec.expand.up[0]: DROP COLUMN in expand"),
            "\(validate.combined)")
        let plan = try await repo.tide("plan")
        #expect(
            plan.standardError.contains("DROP COLUMN in expand breaks the version still running"), "\(plan.combined)")
    }

    @Test(
        "tide migrations shows phase, owner and what comes next; migrations down is a person's decision, refused while needed"
    )
    func migrationsCommand() async throws {
        let db = try SQLDatabaseFixture(.sqlite)
        try await db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        let repo = try ConfigRepo()
        let platform = """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: orders-db}
            spec: {type: sql, url: "\(db.url)"}
            ---
            apiVersion: tide/v1
            kind: Migration
            metadata: {name: add-phone}
            spec:
              executor: orders-db
              expand: {up: ["ALTER TABLE users ADD COLUMN phone TEXT"], down: ["ALTER TABLE users DROP COLUMN phone"]}

            """
        try await repo.fixture.commit(
            "api 2.0 needs add-phone",
            files: ["db.yaml": platform, "api.yaml": ConfigRepo.service("api", "2.0") + "  migrations: [add-phone]\n"])
        #expect(try await repo.tide("reconcile").status == 0)
        let listed = try await repo.tide("migrations")
        #expect(listed.status == 0, "\(listed.combined)")
        for word in ["add-phone", "expanded", "this install", "api@prod", "in use"] {
            #expect(listed.standardOutput.contains(word), "\(word) in \(listed.standardOutput)")
        }
        let refused = try await repo.tide("migrations", "down", "add-phone", "--env", "prod")
        #expect(refused.status == 1)
        #expect(refused.standardError.contains("still needed in prod by api@prod"), "\(refused.combined)")

        // A newer version without it: not a rollback, so nothing is undone by itself — it is reported.
        try await repo.fixture.commit("api 3.0", files: ["api.yaml": ConfigRepo.service("api", "3.0")])
        let forward = try await repo.tide("reconcile")
        #expect(forward.status == 0, "\(forward.combined)")
        #expect(forward.standardOutput.contains("left alone"), "\(forward.combined)")
        #expect(try await db.columns("users") == ["id", "name", "phone"])
        let json = try #require(try repo.json(try await repo.tide("migrations", "--json")) as? [[String: Any]])
        let entry = try #require(json.first { $0["migration"] as? String == "add-phone" })
        #expect((entry["next"] as? String)?.hasPrefix("left alone") == true)
        #expect(entry["ours"] as? Bool == true)
        #expect((entry["owner"] as? String)?.contains(" state=") == true)

        let preview = try await repo.tide("migrations", "down", "add-phone", "--env", "prod")
        #expect(preview.status == 1)
        #expect(preview.standardError.contains("ALTER TABLE users DROP COLUMN phone"), "\(preview.combined)")
        #expect(preview.standardError.contains("--yes"))
        #expect(try await db.columns("users") == ["id", "name", "phone"], "a preview changes nothing")
        let down = try await repo.tide("migrations", "down", "add-phone", "--env", "prod", "--by", "alice", "--yes")
        #expect(down.status == 0, "\(down.combined)")
        #expect(try await db.columns("users") == ["id", "name"])
        #expect(try await db.history() == ["add-phone|expand", "add-phone|down"])
        let history = try await repo.tide("history")
        // The user running tide, not the --by text (which is a comment).
        #expect(history.standardOutput.contains("undone by \(NSUserName())"), "\(history.standardOutput)")
        #expect(!history.standardOutput.contains("undone by alice"), "\(history.standardOutput)")
    }

    @Test(
        "kill -9 of tide in the middle of a batched backfill, then a restart: the rounds done stay, each phase is recorded once"
    )
    func killNineMidBackfill() async throws {
        let db = try SQLDatabaseFixture(.sqlite)
        try await db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30) "
                + "INSERT INTO users (id, name) SELECT i, 'u' || i FROM n")
        // One row a round, each round made slow on purpose (SQLite has no sleep: a recursive count), so the kill
        // comes in the middle however fast or loaded the machine is.
        let slowRound =
            "UPDATE users SET email = name || '@example.com' WHERE id IN (SELECT id FROM users WHERE email IS NULL "
            + "AND (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) "
            + "SELECT count(*) FROM c) > 0 LIMIT {{batch}})"
        let repo = try ConfigRepo()
        try await repo.fixture.commit(
            "api 2.0 needs add-email",
            files: [
                "db.yaml": """
                apiVersion: tide/v1
                kind: Executor
                metadata: {name: orders-db}
                spec: {type: sql, url: "\(db.url)", timeout: 10m}
                ---
                apiVersion: tide/v1
                kind: Migration
                metadata: {name: add-email}
                spec:
                  executor: orders-db
                  expand: {up: ["ALTER TABLE users ADD COLUMN email TEXT"], down: ["ALTER TABLE users DROP COLUMN email"]}
                  backfill: {up: ["\(slowRound)"], batchSize: 1}

                """,
                "api.yaml": ConfigRepo.service("api", "2.0") + "  migrations: [add-email]\n",
            ])
        func filled() -> Int { Int((try? db.query("SELECT count(email) FROM users"))?.first ?? "0") ?? 0 }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TideBinary.path)
        process.arguments = ["reconcile", "--repo", repo.fixture.repoPath, "--state", repo.state]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Killed three seconds in by a process of its own (a timer in this test process can fire late while other
        // tests keep its threads busy): expand is done by then, and 30 rounds of a 1,000,000-step count take
        // longer. SQLite's writer does not let a reader in between its rounds, so progress cannot be watched.
        // Waited for off the cooperative pool, which other tests' timers need meanwhile.
        let pid = process.processIdentifier
        _ = try await detached { try runProcess("/bin/sh", ["-c", "sleep 3; kill -9 \(pid)"]) }
        let killed = process
        try await detached { killed.waitUntilExit() }
        let atKill = filled()
        #expect(atKill > 0 && atKill < 30, "\(atKill) rows filled when killed")
        #expect(try await db.history() == ["add-email|expand"], "the backfill is not recorded until it is done")

        let restarted = try await repo.tide("reconcile")
        #expect(restarted.status == 0, "\(restarted.combined)")
        #expect(filled() == 30, "the backfill went on from where it was")
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])
        #expect(try await db.columns("users") == ["id", "name", "email"])
    }

    @Test(
        "kill -9 of tide between two statements of a transaction: false contract: half done, rollbacks refused, it goes on from there",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func killNineMidContract(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try await db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legacy TEXT)",
            "INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'bob')")
        // The second statement runs long enough for the kill to come while it runs.
        let slow =
            backend == .postgres
            ? "SELECT pg_sleep(120)"
            : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT count(*) FROM c"
        func manifests(_ second: String) -> String {
            """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: orders-db}
            spec: {type: sql, url: "\(db.url)", timeout: 10m}
            ---
            apiVersion: tide/v1
            kind: Migration
            metadata: {name: add-email}
            spec:
              executor: orders-db
              expand: {up: ["ALTER TABLE users ADD COLUMN email TEXT"], down: ["ALTER TABLE users DROP COLUMN email"]}
              contract:
                up: ["ALTER TABLE users DROP COLUMN legacy", "\(second)", "SELECT 1"]
                transaction: false
                after: 0s

            """
        }
        let repo = try ConfigRepo()
        let change = try await repo.fixture.commit(
            "api 2.0 needs add-email",
            files: [
                "db.yaml": manifests(slow),
                "api.yaml": ConfigRepo.service("api", "2.0") + "  migrations: [add-email]\n",
            ])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TideBinary.path)
        process.arguments = ["reconcile", "--repo", repo.fixture.repoPath, "--state", repo.state]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // The first statement done and its progress row written: the second runs now.
        var halfWay = false
        for _ in 0..<600 {
            let partial = await (try? db.history().filter { $0 == "add-email|partial" }.count) ?? 0
            if partial >= 2, await (try? db.columns("users").contains("legacy")) == false {
                halfWay = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let seen = await (try? db.history()) ?? []
        try #require(halfWay, "\(seen)")
        kill(process.processIdentifier, SIGKILL)
        let killed = process
        try await detached { killed.waitUntilExit() }
        await #expect(!(try db.history()).contains("add-email|contract"))

        let migrations = try await repo.tide("migrations")
        #expect(migrations.standardOutput.contains("contract half done"), "\(migrations.combined)")
        let json = try await repo.tide("migrations", "--json")
        #expect(json.standardOutput.contains("statement 2 may or may not have run"), "\(json.standardOutput)")
        // A rollback past it is refused: the contract started.
        let revert = try await repo.fixture.revert(change)
        let plan = try await repo.tide("plan")
        #expect(plan.combined.contains("refuse"), "\(plan.combined)")
        _ = revert
        // Back to 2.0 with the second statement made quick: it goes on from statement 2 (the first, which would
        // fail now that legacy is gone, does not run again).
        try await repo.fixture.commit(
            "api 2.0 again, quicker second statement",
            files: [
                "db.yaml": manifests("SELECT 2"),
                "api.yaml": ConfigRepo.service("api", "2.0") + "  migrations: [add-email]\n",
            ])
        let resumed = try await repo.tide("reconcile")
        #expect(resumed.status == 0, "\(resumed.combined)")
        #expect(resumed.standardOutput.contains("went on from statement 2"), "\(resumed.combined)")
        #expect(try await db.history().last == "add-email|contract")
        #expect(try await db.columns("users") == ["id", "name", "email"])
    }
}
