import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

/// The five ways a trial lost data through a `down` or `contract` Tide decided on its own, each on SQLite and
/// PostgreSQL. What must never happen: a down without an explicit rollback of every target that needed the
/// migration; a contract while a target using the database runs a version without the migration; any action on
/// another install's migration.
@Suite("TideEngine: migrations never lose data")
struct MigrationSafetyTests {
    typealias M = MigrationTests

    static let addPhone = """
        apiVersion: tide/v1
        kind: Migration
        metadata: {name: add-phone}
        spec:
          executor: orders-db
          expand:
            up: ["ALTER TABLE users ADD COLUMN phone TEXT"]
            down: ["ALTER TABLE users DROP COLUMN phone"]

        """

    @Test(
        "a failed forward rollout keeps the expand its candidate writes to",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func failedForwardRollout(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        h.executor.fail { $0.action == .health && $0.version == "2.0" }
        try await h.fixture.commit(
            "payments 2.0 with phone",
            files: [
                "tide/phone.yaml": Self.addPhone, "services/payments.yaml": M.service("2.0", migrations: ["add-phone"]),
            ])
        let report = try await h.pass()
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .failed)
        #expect(!report.migrations.contains { $0.phase == .of(.down) })
        #expect(try await db.columns("users") == ["id", "name", "legacy", "phone"], "2.0 runs and writes to phone")
        #expect(try await db.history() == ["add-phone|expand"])
        // Status says what runs: the failed candidate (recreate, no rollback).
        let live = try #require(await h.live("payments"))
        #expect(live.version == "2.0")
        #expect(live.phase == .failed)
        _ = try await h.pass()
        #expect(try await db.columns("users") == ["id", "name", "legacy", "phone"], "and stays, pass after pass")
    }

    @Test(
        "a second install on the same database never undoes what it does not own",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func secondInstall(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": M.migration,
                "services/payments.yaml": M.service("2.0", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])

        // Another repo (and state) with a service on the same database, that lists no migration at all.
        let second = try Harness(
            store: .inMemory,
            files: [
                "tide/base.yaml": executorYAML, "tide/db.yaml": M.platform(db.url),
                "services/reports.yaml": serviceYAML("reports", version: "1.0").replacingOccurrences(
                    of: "  executor: local\n", with: "  executor: local\n  databases: [orders-db]\n"),
            ],
            commit: "other install", clock: h.clock, executor: h.executor)
        let report = try await second.reconciler.reconcile(lockTimeout: 1)
        #expect(!report.migrations.contains { $0.phase == .of(.down) || $0.phase == .of(.contract) })
        let reported = try #require(report.migrations.first { $0.migration == "add-email" })
        #expect(reported.result == .leftAlone)
        #expect(reported.message.contains("applied by another install"))
        #expect(try await db.columns("users") == ["id", "name", "legacy", "email"])
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])

        // Its owner contracts it as usual.
        h.clock.advance(by: 3600)
        _ = try await h.pass()
        #expect(try await db.history().last == "add-email|contract")
    }

    @Test(
        "a per-environment version that does not need the migration holds the contract",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func perEnvironmentVersions(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        // staging and prod share the database (one url); prod keeps 1.0, which needs nothing, staging takes 1.1.
        let service = serviceYAML(
            "payments", version: "1.0",
            envs: "{staging: {version: \"1.1\", migrations: [add-email]}, prod: {migrations: []}}")
        try await h.fixture.commit(
            "payments 1.1 to staging", files: ["tide/migrations.yaml": M.migration, "services/payments.yaml": service])
        var report = try await h.pass()
        #expect(
            report.outcomes.first { $0.target == TargetID(service: "payments", environment: "staging") }?.result
                == .deployed)
        #expect(
            report.outcomes.first { $0.target == TargetID(service: "payments", environment: "prod") }?.result
                == .unchanged)
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])
        h.clock.advance(by: 2 * 3600)
        report = try await h.pass()
        #expect(try await db.columns("users") == ["id", "name", "legacy", "email"], "legacy stays: prod 1.0 reads it")
        let waits = try #require(report.migrations.first { $0.migration == "add-email" && $0.phase == .of(.contract) })
        #expect(waits.result == .waiting)
        #expect(waits.message.contains("payments@prod is to run 1.0, which does not list it"), "\(waits.message)")
    }

    @Test(
        "a shared migration does not contract after one of its services was reverted",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func sharedMigrationAfterRevert(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": M.migration,
                "services/payments.yaml": M.service("2.0", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        let checkout = try await h.fixture.commit(
            "checkout 1.1 with email",
            files: [
                "services/checkout.yaml": serviceYAML("checkout", version: "1.1", dependsOn: ["payments"])
                    + "  migrations: [add-email]\n"
            ])
        _ = try await h.pass()
        #expect(await h.live("checkout")?.migrations == ["add-email"])
        try await h.fixture.revert(checkout)
        var report = try await h.pass()
        let back = try #require(report.outcomes.first { $0.target.service == "checkout" })
        #expect(back.result == .deployed && back.classification == .rollback)
        #expect(!report.migrations.contains { $0.phase == .of(.down) }, "payments still needs it")
        h.clock.advance(by: 2 * 3600)
        report = try await h.pass()
        await #expect(
            try db.columns("users") == ["id", "name", "legacy", "email"], "legacy stays: checkout 1.0 reads it")
        await #expect(!(try db.history()).contains("add-email|contract"))
        let waits = try #require(report.migrations.first { $0.migration == "add-email" && $0.phase == .of(.contract) })
        #expect(waits.message.contains("checkout@prod is to run 1.0.0, which does not list it"), "\(waits.message)")
    }

    @Test(
        "a renamed migration with idempotent SQL leaves the old one's column alone",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func renamedMigration(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        try await h.fixture.commit(
            "payments 2.0 with phone",
            files: [
                "tide/phone.yaml": Self.addPhone, "services/payments.yaml": M.service("2.0", migrations: ["add-phone"]),
            ])
        _ = try await h.pass()
        try await db.execute("UPDATE users SET phone = '555' WHERE id = 1")
        // Renamed: the new expand finds the column there already (PostgreSQL: IF NOT EXISTS; SQLite has no such
        // clause, so a statement that changes nothing stands in for it).
        let idempotent =
            backend == .postgres ? "ALTER TABLE users ADD COLUMN IF NOT EXISTS phone TEXT" : "SELECT 1"
        let renamed = Self.addPhone.replacingOccurrences(of: "name: add-phone}", with: "name: add-phone-numbers}")
            .replacingOccurrences(of: "ALTER TABLE users ADD COLUMN phone TEXT", with: idempotent)
        try await h.fixture.remove("tide/phone.yaml")
        try await h.fixture.commit(
            "rename add-phone",
            files: [
                "tide/phone-numbers.yaml": renamed,
                "services/payments.yaml": M.service("2.1", migrations: ["add-phone-numbers"]),
            ])
        let report = try await h.pass()
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .deployed)
        #expect(!report.migrations.contains { $0.phase == .of(.down) })
        await #expect(
            try db.query("SELECT phone FROM users WHERE id = 1") == ["555"], "the data 2.1 reads is still there")
        let left = try #require(report.migrations.first { $0.migration == "add-phone" })
        #expect(left.result == .leftAlone)
        #expect(left.message.contains("tide migrations down add-phone"))
    }

    @Test("a database that is down during expand: nothing is failed or undone, the phase is retried and runs")
    func databaseDownDuringExpand() async throws {
        let server = try PostgresServer.startDedicated()
        defer { try? server.stop() }
        let database = try await server.makeDatabase()
        _ = try await server.psql(
            database,
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legacy TEXT); "
                + "INSERT INTO users (id, name) VALUES (1, 'ada')")
        let h = try Harness()
        try await h.fixture.commit(
            "payments 1.0",
            files: ["tide/db.yaml": M.platform(server.url(database)), "services/payments.yaml": M.service("1.0")])
        _ = try await h.pass()
        try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": M.migration,
                "services/payments.yaml": M.service("2.0", migrations: ["add-email"]),
            ])
        try server.stop(mode: "immediate")
        var report = try await h.pass()
        let waiting = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(waiting.result == .waiting, "\(waiting)")
        #expect(waiting.message?.contains("waiting for the database") == true)
        let due = try #require(waiting.nextDue)
        #expect(!report.hasFailures)
        let live = try #require(await h.live("payments"))
        #expect(live.phase == .healthy && live.version == "1.0" && live.failed == nil, "nothing is marked failed")
        #expect(h.executor.requests.filter { $0.service == "payments" }.isEmpty, "the rollout did not start")
        // Before the announced time, a pass does not try again (the server is still down: it would wait).
        try server.start()
        h.clock.set(due.addingTimeInterval(-65))  // pass() adds a minute: 5 s before the due time
        report = try await h.pass()
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .waiting, "backing off")

        h.clock.set(due.addingTimeInterval(-60))
        report = try await h.pass()
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .deployed)
        let rows = try await server.psql(database, "SELECT name || '|' || phase FROM tide_migrations ORDER BY id")
        #expect(rows.standardOutput.contains("add-email|expand"))
        #expect(!rows.standardOutput.contains("down"))
    }

    @Test(
        "a revert that also removes the Migration and its executor is still refused past the contract",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func refusalWhenTheRevertRemovesEverything(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try await db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legacy TEXT)",
            "INSERT INTO users (id, name, legacy) VALUES (1, 'ada', 'x')")
        let h = try Harness()
        _ = try await h.pass()
        // One commit brings the database, the migration and the version that needs it (the README's pattern).
        let change = try await h.fixture.commit(
            "payments 2.1 with its database and migration",
            files: [
                "tide/db.yaml": M.platform(db.url), "tide/migrations.yaml": M.migration,
                "services/payments.yaml": M.service("2.1", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        h.clock.advance(by: 3600)
        _ = try await h.pass()
        #expect(try await db.history().last == "add-email|contract")
        try await h.fixture.revert(change)
        let refused = try #require(try await h.reconciler.plan().1?.actions.first { $0.target.service == "payments" })
        #expect(refused.kind == .refuse, "\(refused)")
        h.executor.reset()
        _ = try await h.pass()
        #expect(h.executor.requests.filter { $0.service == "payments" }.isEmpty)
        #expect(await h.live("payments")?.version == "2.1")
        #expect(await h.live("payments")?.phase == .healthy)
    }

    @Test(
        "a phase with transaction: false runs through the engine (CREATE INDEX CONCURRENTLY on PostgreSQL)",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func phaseOutsideTransaction(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        let create =
            backend == .postgres
            ? "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_name ON users (name)"
            : "CREATE INDEX IF NOT EXISTS users_name ON users (name)"
        let index = """
            apiVersion: tide/v1
            kind: Migration
            metadata: {name: index-name}
            spec:
              executor: orders-db
              expand: {up: ["\(create)"], down: ["DROP INDEX IF EXISTS users_name"], transaction: false}

            """
        try await h.fixture.commit(
            "payments 2.0 with an index",
            files: ["tide/index.yaml": index, "services/payments.yaml": M.service("2.0", migrations: ["index-name"])])
        let report = try await h.pass()
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .deployed, "\(report.outcomes)")
        let indexes =
            await backend == .postgres
            ? try db.query("SELECT indexname FROM pg_indexes WHERE indexname = 'users_name'")
            : try db.query("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'users_name'")
        #expect(indexes == ["users_name"])
        #expect(try await db.history().filter { !$0.hasSuffix("|partial") } == ["index-name|expand"])
    }

    @Test(
        "one database under two executor names is one database: a service using the other name holds the contract",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func oneDatabaseTwoNames(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        let second = M.platform(db.url).replacingOccurrences(of: "name: orders-db}", with: "name: orders-db-2}")
        try await h.fixture.commit(
            "payments 2.0 with email; checkout reads the same database by another name",
            files: [
                "tide/db2.yaml": second, "tide/migrations.yaml": M.migration,
                "services/payments.yaml": M.service("2.0", migrations: ["add-email"]),
                "services/checkout.yaml": serviceYAML("checkout", version: "1.0.0", dependsOn: ["payments"])
                    + "  databases: [orders-db-2]\n",
            ])
        _ = try await h.pass()
        h.clock.advance(by: 2 * 3600)
        let report = try await h.pass()
        #expect(try await db.columns("users") == ["id", "name", "legacy", "email"], "legacy stays: checkout reads it")
        let waits = try #require(report.migrations.first { $0.migration == "add-email" && $0.phase == .of(.contract) })
        #expect(waits.message.contains("checkout@prod is to run 1.0.0, which does not list it"), "\(waits.message)")
    }

    @Test(
        "a revert that removed the Migration and its executor still runs the recorded down, visibly",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func revertRemovingExecutorStillDowns(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try await db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legacy TEXT)")
        let h = try Harness()
        _ = try await h.pass()
        let noContract = M.migration.replacingOccurrences(
            of: "  contract:\n    up: [\"ALTER TABLE users DROP COLUMN legacy\"]\n    after: 1h\n", with: "")
        let change = try await h.fixture.commit(
            "payments 2.1 with its database and migration",
            files: [
                "tide/db.yaml": M.platform(db.url), "tide/migrations.yaml": noContract,
                "services/payments.yaml": M.service("2.1", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        #expect(try await db.columns("users") == ["id", "name", "legacy", "email"])
        try await h.fixture.revert(change)
        let report = try await h.pass()
        #expect(report.outcomes.first { $0.target.service == "payments" }?.classification == .rollback)
        #expect(report.migrations.map(\.phase).contains(.of(.down)), "\(report.migrations)")
        #expect(try await db.columns("users") == ["id", "name", "legacy"])
    }

    @Test(
        "tide promote never writes a version into an environment whose own migration list would contradict it",
        arguments: [SQLDatabaseFixture.Backend.sqlite])
    func promotionThatWouldContradict(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, _) = try await M.started(backend)
        let service =
            serviceYAML(
                "payments", version: "1.1", envs: "{staging: {}, prod: {version: \"1.0\", migrations: []}}")
            + "  migrations: [add-email]\n"
        try await h.fixture.commit(
            "payments 1.1 to staging", files: ["tide/migrations.yaml": M.migration, "services/payments.yaml": service])
        _ = try await h.pass()
        let head = try await h.fixture.head()
        await #expect {
            _ = try await h.reconciler.promoter.promote(service: "payments", to: "prod", version: "1.1")
        } throws: { error in
            "\(error)".contains("would write manifests that do not validate, so nothing was written")
                && "\(error)".contains("one version needs the same migrations everywhere it runs")
        }
        #expect(try await h.fixture.head() == head)
    }

    @Test("a database that cannot be read refuses the rollbacks that would drop its migrations; the pass goes on")
    func unreadableDatabaseDuringPlanning() async throws {
        let server = try PostgresServer.startDedicated()
        defer { try? server.stop() }
        let database = try await server.makeDatabase()
        _ = try await server.psql(
            database, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legacy TEXT)")
        let h = try Harness()
        try await h.fixture.commit(
            "payments 1.0",
            files: ["tide/db.yaml": M.platform(server.url(database)), "services/payments.yaml": M.service("1.0")])
        _ = try await h.pass()
        let change = try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": M.migration,
                "services/payments.yaml": M.service("2.0", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        try server.stop(mode: "immediate")
        try await h.fixture.revert(change)
        try await h.fixture.commit("reports", files: ["services/reports.yaml": serviceYAML("reports", version: "1.0")])
        let report = try await h.pass()
        let payments = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(payments.result == .held)
        #expect(payments.message?.contains("the database cannot be read to tell whether its contract ran") == true)
        #expect(report.outcomes.first { $0.target.service == "reports" }?.result == .deployed, "the pass went on")
        #expect(await h.live("payments")?.version == "2.0")
    }

    @Test(
        "an install is its repository (by its first commit) and its state (by its id), not their paths",
        arguments: [SQLDatabaseFixture.Backend.sqlite])
    func ownerSurvivesAMove(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": M.migration,
                "services/payments.yaml": M.service("2.0", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        // The same install after its checkout moved: a copy of the repository, the same state.
        let moved = try TemporaryDirectory("tide-moved")
        let copy = moved.appending("config")
        _ = try await runProcess("/bin/cp", ["-r", h.fixture.workTree, copy])
        let same = try h.makeReconciler(at: copy)
        h.clock.advance(by: 2 * 3600)
        let report = try await same.reconcile(lockTimeout: 1)
        #expect(
            report.migrations.contains { $0.phase == .of(.contract) && $0.result == .applied }, "\(report.migrations)")
        #expect(try await db.history().last == "add-email|contract")
    }

    @Test(
        "an install's explicit rollback never downs a migration another install runs a version of",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func rollbackWhileAnotherInstallUsesIt(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        let change = try await h.fixture.commit(
            "payments 2.0 with phone",
            files: [
                "tide/phone.yaml": Self.addPhone, "services/payments.yaml": M.service("2.0", migrations: ["add-phone"]),
            ])
        _ = try await h.pass()
        // Install B: another repo and state on the same database, whose web 2.0 needs add-phone too.
        let second = try Harness(
            store: .inMemory,
            files: [
                "tide/base.yaml": executorYAML, "tide/db.yaml": M.platform(db.url), "tide/phone.yaml": Self.addPhone,
                "services/web.yaml": serviceYAML("web", version: "2.0") + "  migrations: [add-phone]\n",
            ],
            commit: "web 2.0", clock: h.clock, executor: h.executor)
        let b = try await second.reconciler.reconcile(lockTimeout: 1)
        #expect(b.outcomes.first { $0.target.service == "web" }?.result == .deployed)
        #expect(try await db.history() == ["add-phone|expand", "add-phone|use", "add-phone|ready"])
        // A rolls back explicitly: normally its down would be due — but B runs a version that needs the column.
        try await h.fixture.revert(change)
        let report = try await h.pass()
        #expect(report.outcomes.first { $0.target.service == "payments" }?.classification == .rollback)
        #expect(!report.migrations.contains { $0.phase == .of(.down) })
        let left = try #require(report.migrations.first { $0.migration == "add-phone" })
        #expect(left.message.contains("another install recorded that it runs a version that needs it"), "\(left)")
        #expect(try await db.columns("users") == ["id", "name", "legacy", "phone"])
    }

    @Test("one database under two names that do not look alike (a hard link) is still one: the contract waits for both")
    func oneDatabaseUnrelatedNames() async throws {
        let db = try SQLDatabaseFixture(.sqlite)
        try await db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legacy TEXT)",
            "INSERT INTO users (id, name, legacy) VALUES (1, 'ada', 'x')")
        let path = String(db.url.dropFirst("sqlite:".count))
        let other = (path as NSString).deletingLastPathComponent + "/another-name.sqlite"
        try FileManager.default.linkItem(atPath: path, toPath: other)
        let platform = M.platform(db.url) + "  environments: {prod: {url: \"sqlite:\(other)\"}}\n"
        let h = try Harness()
        let service = serviceYAML(
            "payments", version: "1.0",
            envs: "{staging: {version: \"1.1\", migrations: [add-email]}, prod: {migrations: []}}")
        try await h.fixture.commit(
            "payments 1.1 to staging",
            files: ["tide/db.yaml": platform, "tide/migrations.yaml": M.migration, "services/payments.yaml": service])
        _ = try await h.pass()
        h.clock.advance(by: 2 * 3600)
        let report = try await h.pass()
        #expect(try await db.columns("users") == ["id", "name", "legacy", "email"], "legacy stays: prod 1.0 reads it")
        let waits = try #require(report.migrations.first { $0.migration == "add-email" && $0.phase == .of(.contract) })
        #expect(waits.message.contains("payments@prod is to run 1.0, which does not list it"), "\(waits.message)")
    }
}
