import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Expand-contract under faults, on SQLite and PostgreSQL (the list on `MigrationDecision`): a phase that stops
/// half way is remembered, every user of a schema holds the contract — other installs, environments that left
/// the repository, installs that raced — a down never runs under a later migration, and a contract is never
/// decided on a stale head or assumed where the history went backwards.
@Suite("TideEngine: migrations under faults — half-done phases, every user of a schema")
struct MigrationFaultTests {
    typealias M = MigrationTests

    /// add-email, with the contract given (statement by statement unless `transaction`).
    static func addEmail(contract: [String], transaction: Bool = false, after: String = "1h") -> String {
        let statements = contract.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            apiVersion: tide/v1
            kind: Migration
            metadata: {name: add-email}
            spec:
              executor: orders-db
              expand:
                up: ["ALTER TABLE users ADD COLUMN email TEXT"]
                down: ["ALTER TABLE users DROP COLUMN email"]
              backfill:
                up: ["UPDATE users SET email = name || '@example.com' WHERE email IS NULL"]
              contract:
                up: [\(statements)]
                transaction: \(transaction)
                after: \(after)

            """
    }

    /// payments 2.0 runs with add-email expanded and backfilled (its contract an hour later).
    static func emailed(_ backend: SQLDatabaseFixture.Backend) async throws -> (Harness, SQLDatabaseFixture) {
        let (h, db) = try await M.started(backend)
        try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": M.migration,
                "services/payments.yaml": M.service("2.0", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        return (h, db)
    }

    static let halfWay = ["ALTER TABLE users DROP COLUMN legacy", "DROP TABLE no_such_table"]
    static let fixed = ["ALTER TABLE users DROP COLUMN legacy", "DROP TABLE IF EXISTS no_such_table"]

    /// payments 2.0 with add-email (contract `contract`) runs, and the contract is due.
    func contractDue(_ backend: SQLDatabaseFixture.Backend, contract: [String]) async throws -> (
        Harness, SQLDatabaseFixture
    ) {
        let (h, db) = try await M.started(backend)
        try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": Self.addEmail(contract: contract),
                "services/payments.yaml": M.service("2.0", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        h.clock.advance(by: 3600)
        return (h, db)
    }

    @Test(
        "a statement-by-statement contract that fails half way is recorded half done, refuses rollbacks, and goes on from the failing statement once it is fixed",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func halfDoneContract(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await contractDue(backend, contract: Self.halfWay)
        var report = try await h.pass()
        let failed = try #require(report.migrations.first { $0.migration == "add-email" && $0.phase == .of(.contract) })
        #expect(failed.result == .failed)
        #expect(!failed.message.contains("as before"), "\(failed.message)")
        #expect(failed.message.contains("1 of its 2 statements stay applied"), "\(failed.message)")
        #expect(try await db.columns("users") == ["id", "name", "email"], "legacy is gone: the first statement ran")
        #expect(try await db.history().filter { $0.hasSuffix("|partial") }.count >= 2)

        let entry = try #require(
            try await h.reconciler.migrations.migrationReport().first { $0.migration == "add-email" })
        #expect(entry.phase == "contract half done", "\(entry)")
        #expect(entry.halfDone?.contains("1 of 2 statements applied; statement 2 failed") == true, "\(entry)")

        // The same failing statement is not run again pass after pass: it waits for a fix.
        report = try await h.pass()
        let waiting = try #require(report.migrations.first { $0.migration == "add-email" })
        #expect(waiting.result == .leftAlone, "\(waiting)")
        #expect(waiting.message.contains("once that statement is fixed"), "\(waiting.message)")

        // A rollback to a version without the migration is refused: the contract started. No down runs.
        try await h.fixture.commit("payments back to 1.0", files: ["services/payments.yaml": M.service("1.0")])
        let refused = try #require(try await h.reconciler.plan().1?.actions.first { $0.target.service == "payments" })
        #expect(refused.kind == .refuse, "\(refused)")
        report = try await h.pass()
        #expect(!report.migrations.contains { $0.phase == .of(.down) })
        #expect(try await db.columns("users") == ["id", "name", "email"], "email stays")
        #expect(await h.live("payments")?.version == "2.0")

        // Editing a statement that already ran is refused; fixing the failing one goes on from there.
        try await h.fixture.commit(
            "edit the applied statement",
            files: [
                "services/payments.yaml": M.service("2.0", migrations: ["add-email"]),
                "tide/migrations.yaml": Self.addEmail(
                    contract: ["ALTER TABLE users DROP COLUMN name", "DROP TABLE IF EXISTS no_such_table"]),
            ])
        report = try await h.pass()
        let edited = try #require(report.migrations.first { $0.migration == "add-email" })
        #expect(edited.result == .failed)
        #expect(edited.message.contains("stopped half way"), "\(edited.message)")
        #expect(try await db.columns("users") == ["id", "name", "email"])

        try await h.fixture.commit(
            "fix the failing statement", files: ["tide/migrations.yaml": Self.addEmail(contract: Self.fixed)])
        report = try await h.pass()
        let applied = try #require(
            report.migrations.first { $0.migration == "add-email" && $0.phase == .of(.contract) })
        #expect(applied.result == .applied, "\(applied)")
        #expect(applied.message.contains("went on from statement 2"), "\(applied.message)")
        #expect(try await db.history().last == "add-email|contract")
        #expect(
            try await h.reconciler.migrations.migrationReport().first { $0.migration == "add-email" }?.phase
                == "contracted")
    }

    @Test(
        "Tide killed between two statements of a contract: it is half done, never as before, and goes on by itself",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func killedBetweenStatements(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await contractDue(backend, contract: Self.fixed)
        // What a kill -9 after the first statement leaves: the statement applied, and the progress row written
        // after it (no failure: Tide never got to say why).
        try await db.execute("ALTER TABLE users DROP COLUMN legacy")
        let owner = try await h.reconciler.migrations.migrationOwner()
        let manifest = try await #require(
            try ManifestLoader().load(
                from: GitCommitSource(repository: h.reconciler.repository, commit: try h.fixture.head(), root: "")
            ).migrations["add-email"]?.contract)
        let run = MigrationRun(manifest)
        let record = await MigrationRecord(
            name: "add-email", phase: .contract, checksum: manifest.checksum, revision: try h.fixture.head().hex,
            appliedAt: h.clock.now(), durationMilliseconds: 0, owner: owner.record(environment: "prod"))
        let database = try await MigrationDatabases.open(
            try #require(
                try ManifestLoader().load(
                    from: GitCommitSource(repository: h.reconciler.repository, commit: try h.fixture.head(), root: "")
                ).executors["orders-db"]), environment: "prod", workingDirectory: "/")
        _ = try await database.apply(MigrationRun([]), record: run.progress(record, done: 1), due: { _ in true })
        await database.close()

        let entry = try #require(
            try await h.reconciler.migrations.migrationReport().first { $0.migration == "add-email" })
        #expect(entry.phase == "contract half done")
        #expect(entry.halfDone?.contains("statement 2 may or may not have run") == true, "\(entry)")
        try await h.fixture.commit("payments back to 1.0", files: ["services/payments.yaml": M.service("1.0")])
        #expect(try await h.reconciler.plan().1?.actions.first { $0.target.service == "payments" }?.kind == .refuse)
        try await h.fixture.commit(
            "payments 2.0 again", files: ["services/payments.yaml": M.service("2.0", migrations: ["add-email"])])

        let report = try await h.pass()
        let applied = try #require(
            report.migrations.first { $0.migration == "add-email" && $0.phase == .of(.contract) })
        #expect(applied.result == .applied, "\(applied)")
        #expect(applied.message.contains("went on from statement 2"), "the first statement is not run again")
        #expect(try await db.history().last == "add-email|contract")
    }

    /// A second install (its own repository and state) on the same database: `api` 1 runs without add-email.
    func secondInstall(_ h: Harness, _ db: SQLDatabaseFixture) async throws -> Harness {
        let canary = "  strategy:\n    type: canary\n    steps: [{setWeight: 10}, {pause: {}}]\n"
        let second = try Harness(
            store: .inMemory,
            files: [
                "tide/base.yaml": executorYAML, "tide/db.yaml": M.platform(db.url),
                "tide/migrations.yaml": M.migration,
                "services/api.yaml": serviceYAML("api", version: "1").replacingOccurrences(
                    of: "  executor: local\n", with: "  executor: local\n" + canary),
            ],
            commit: "install B", clock: h.clock, executor: h.executor)
        _ = try await second.reconciler.reconcile(lockTimeout: 1)
        return second
    }

    func api(_ version: String, migrations: [String]) -> String {
        let canary = "  strategy:\n    type: canary\n    steps: [{setWeight: 10}, {pause: {}}]\n"
        return serviceYAML("api", version: version).replacingOccurrences(
            of: "  executor: local\n", with: "  executor: local\n" + canary)
            + "  migrations: [\(migrations.joined(separator: ", "))]\n"
    }

    @Test(
        "another install's use holds the contract until it says its targets run healthy versions that list the migration",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func anotherInstallsUse(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.emailed(backend)
        let b = try await secondInstall(h, db)
        // B rolls api 2 (which needs add-email) out as a canary, paused at 10 %: its stable api 1 still writes
        // legacy.
        try await b.fixture.commit("api 2", files: ["services/api.yaml": api("2", migrations: ["add-email"])])
        _ = try await b.reconciler.reconcile(lockTimeout: 1)
        #expect(await b.store.liveTarget(TargetID(service: "api", environment: "prod"))?.rollout?.weight == 10)
        #expect(try await db.history().contains("add-email|use"))

        h.clock.advance(by: 2 * 3600)
        var report = try await h.pass()
        let held = try #require(report.migrations.first { $0.migration == "add-email" && $0.phase == .of(.contract) })
        #expect(held.result == .waiting, "\(held)")
        #expect(held.message.contains("another install"), "\(held.message)")
        #expect(try await db.columns("users").contains("legacy"), "api 1 still writes it")

        // B promotes api 2: once it runs healthy, B says so, and A contracts.
        _ = try await b.reconciler.control(.promote(full: true), service: "api", environment: "prod", by: "bea")
        _ = try await b.reconciler.reconcile(lockTimeout: 1)
        #expect(await b.store.liveTarget(TargetID(service: "api", environment: "prod"))?.phase == .healthy)
        #expect(try await db.history().contains("add-email|ready"))
        report = try await h.pass()
        #expect(try await db.history().last == "add-email|contract", "\(report.migrations)")
        #expect(try await !db.columns("users").contains("legacy"))
    }

    @Test(
        "a person releases another install's use by name; an install that needs it no more says so (unused)",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func releasedAndUnused(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.emailed(backend)
        let b = try await secondInstall(h, db)
        try await b.fixture.commit("api 2", files: ["services/api.yaml": api("2", migrations: ["add-email"])])
        _ = try await b.reconciler.reconcile(lockTimeout: 1)
        let install = try await b.reconciler.migrations.migrationOwner().id
        let report = try #require(
            try await h.reconciler.migrations.migrationReport().first { $0.migration == "add-email" })
        #expect(report.usedBy[install] == "uses", "\(report.usedBy)")

        // B goes back to api 1: it needs add-email no more, and says so.
        try await b.fixture.commit("api back to 1", files: ["services/api.yaml": api("1", migrations: [])])
        _ = try await b.reconciler.reconcile(lockTimeout: 1)
        #expect(await b.store.liveTarget(TargetID(service: "api", environment: "prod"))?.version == "1")
        let history = try await db.history()
        #expect(history.last == "add-email|unused", "\(history)")
        #expect(
            try await h.reconciler.migrations.migrationReport().first { $0.migration == "add-email" }?.usedBy.isEmpty
                == true)

        // A third install takes api 2 and stays paused: its owner's person releases it by name.
        let c = try await secondInstall(h, db)
        try await c.fixture.commit("api 2", files: ["services/api.yaml": api("2", migrations: ["add-email"])])
        _ = try await c.reconciler.reconcile(lockTimeout: 1)
        #expect(try await db.history().last == "add-email|use")
        await #expect(throws: MigrationCommandError.self) {
            _ = try await h.reconciler.migrations.migrationRelease(
                name: "add-email", environment: "prod", install: "no-such-install", by: "ops")
        }
        h.clock.advance(by: 2 * 3600)
        _ = try await h.pass()
        await #expect(!(try db.history()).contains("add-email|contract"), "held by the third install")
        let released = try await h.reconciler.migrations.migrationRelease(
            name: "add-email", environment: "prod", install: try await c.reconciler.migrations.migrationOwner().id,
            by: "ops")
        #expect(released.contains("no longer holds"), "\(released)")
        _ = try await h.pass()
        #expect(try await db.history().last == "add-email|contract")
    }

    @Test(
        "a live target whose environment left the repository (its removal failing) still holds the contract",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func removedEnvironmentHolds(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try await db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legacy TEXT)",
            "INSERT INTO users (id, name, legacy) VALUES (1, 'ada', 'x')")
        let h = try Harness()
        let shared = serviceYAML(
            "payments", version: "1.0",
            envs: "{staging: {version: \"2.0\", migrations: [add-email]}, prod: {migrations: []}}")
        try await h.fixture.commit(
            "payments 2.0 in staging, 1.0 in prod, one database",
            files: [
                "tide/db.yaml": M.platform(db.url), "tide/migrations.yaml": M.migration,
                "services/payments.yaml": shared,
            ])
        _ = try await h.pass()
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])

        // prod leaves the repository; removing payments@prod fails, so it still runs 1.0 (reading legacy).
        h.executor.fail { $0.action == .remove }
        let withoutProd = executorYAML.replacingOccurrences(
            of: "apiVersion: tide/v1\nkind: Environment\nmetadata: {name: prod}\nspec: {production: true}\n---\n",
            with: "")
        #expect(withoutProd != executorYAML)
        try await h.fixture.commit(
            "prod is gone",
            files: [
                "tide/base.yaml": withoutProd,
                "services/payments.yaml": serviceYAML(
                    "payments", version: "1.0", envs: "{staging: {version: \"2.0\", migrations: [add-email]}}"),
                "services/checkout.yaml": serviceYAML(
                    "checkout", version: "1.0.0", dependsOn: ["payments"], envs: "{staging: {}}"),
            ])
        _ = try await h.pass()
        h.clock.advance(by: 2 * 3600)
        let report = try await h.pass()
        #expect(await h.live("payments", "prod")?.version == "1.0", "the removal failed")
        #expect(try await db.columns("users").contains("legacy"), "payments@prod 1.0 still reads legacy")
        await #expect(!(try db.history()).contains("add-email|contract"))
        let waits = try #require(report.migrations.first { $0.migration == "add-email" && $0.phase == .of(.contract) })
        #expect(waits.message.contains("payments@prod"), "\(waits.message)")
    }

    @Test(
        "two installs that expand at the same moment: the one that did not run the expand records its use",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func twoInstallsAtOnce(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try await db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legacy TEXT)",
            "INSERT INTO users (id, name, legacy) VALUES (1, 'ada', 'x')")
        func install(_ service: String, clock: TestClock? = nil, executor: RecordingExecutor? = nil) throws -> Harness {
            try Harness(
                store: .inMemory,
                files: [
                    "tide/base.yaml": executorYAML, "tide/db.yaml": M.platform(db.url),
                    "tide/migrations.yaml": M.migration,
                    "services/\(service).yaml": serviceYAML(service, version: "1") + "  migrations: []\n",
                ],
                commit: "install \(service)", clock: clock ?? TestClock(), executor: executor ?? RecordingExecutor())
        }
        let a = try install("orders")
        let b = try install("reports", clock: a.clock, executor: a.executor)
        _ = try await a.reconciler.reconcile(lockTimeout: 1)
        _ = try await b.reconciler.reconcile(lockTimeout: 1)
        try await a.fixture.commit(
            "orders 2",
            files: ["services/orders.yaml": serviceYAML("orders", version: "2") + "  migrations: [add-email]\n"])
        try await b.fixture.commit(
            "reports 2",
            files: ["services/reports.yaml": serviceYAML("reports", version: "2") + "  migrations: [add-email]\n"])
        async let first = a.reconciler.reconcile(lockTimeout: 5)
        async let second = b.reconciler.reconcile(lockTimeout: 5)
        _ = try await (first, second)
        let history = try await db.history()
        #expect(history.filter { $0 == "add-email|expand" }.count == 1, "\(history)")
        #expect(history.filter { $0 == "add-email|use" }.count == 1, "the other install said it uses it: \(history)")
        // Whichever owns it: going back does not undo it under the other.
        let owner = try #require(
            try await a.reconciler.migrations.migrationReport().first { $0.migration == "add-email" })
        let (own, other) = owner.ours ? (a, b) : (b, a)
        let service = owner.ours ? "orders" : "reports"
        try await own.fixture.commit(
            "\(service) back to 1",
            files: ["services/\(service).yaml": serviceYAML(service, version: "1") + "  migrations: []\n"])
        let report = try await own.reconciler.reconcile(lockTimeout: 5)
        #expect(!report.migrations.contains { $0.phase == .of(.down) && $0.result == .applied }, "\(report.migrations)")
        #expect(try await db.columns("users").contains("email"))
        _ = other
    }

    static let indexEmail = """
        apiVersion: tide/v1
        kind: Migration
        metadata: {name: index-email}
        spec:
          executor: orders-db
          expand:
            up: ["CREATE INDEX users_email_idx ON users (email)"]
            down: ["DROP INDEX users_email_idx"]

        """

    @Test(
        "a down waits for a later migration on the same database that is still applied; downs go newest first",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func downWaitsForLaterMigration(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.emailed(backend)
        try await h.fixture.commit(
            "payments 2.1 indexes it",
            files: [
                "tide/index.yaml": Self.indexEmail,
                "services/payments.yaml": M.service("2.1", migrations: ["add-email", "index-email"]),
            ])
        _ = try await h.pass()
        // Back to 1.0, which needs neither: both are released by the rollback.
        try await h.fixture.commit("payments back to 1.0", files: ["services/payments.yaml": M.service("1.0")])
        let plan = try #require(try await h.reconciler.plan().1)
        let previews = plan.migrations.filter { $0.next.hasPrefix("down after payments@prod rolls back") }
        #expect(
            Set(previews.map(\.migration)) == ["add-email", "index-email"],
            "the plan shows the downs: \(plan.migrations)")
        var report = try await h.pass()
        #expect(await h.live("payments")?.version == "1.0")
        let waits = try #require(report.migrations.first { $0.migration == "add-email" })
        #expect(waits.result == .leftAlone && waits.message.contains("index-email was applied after it"), "\(waits)")
        #expect(try await db.history().contains("index-email|down"))
        await #expect(!(try db.history()).contains("add-email|down"))
        #expect(try await db.columns("users").contains("email"))
        report = try await h.pass()
        #expect(try await db.history().last == "add-email|down", "\(report.migrations)")
        #expect(try await !db.columns("users").contains("email"))
    }

    @Test(
        "an automatic down runs the down expand recorded, not an edit of it made later",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func editedDownIgnored(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.emailed(backend)
        try await db.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY)")
        try await h.fixture.commit(
            "payments back to 1.0; someone edits the down",
            files: [
                "services/payments.yaml": M.service("1.0"),
                "tide/migrations.yaml": M.migration.replacingOccurrences(
                    of: "down: [\"ALTER TABLE users DROP COLUMN email\"]",
                    with: "down: [\"ALTER TABLE users DROP COLUMN email\", \"DROP TABLE audit\"]"),
            ])
        _ = try await h.pass()
        #expect(try await db.history().last == "add-email|down")
        #expect(try await !db.columns("users").contains("email"))
        #expect(try await db.columns("audit") == ["id"], "the edit did not run")
    }

    @Test(
        "after a contract, a new environment on the same database cannot deploy a version without the migration",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func newEnvironmentAfterContract(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.emailed(backend)
        h.clock.advance(by: 3600)
        _ = try await h.pass()
        #expect(try await db.history().last == "add-email|contract")
        // staging joins, on the same database, with the old version.
        try await h.fixture.commit(
            "payments in staging too",
            files: [
                "services/payments.yaml": serviceYAML(
                    "payments", version: "2.0", envs: "{prod: {}, staging: {version: \"1.0\", migrations: []}}")
                    + "  migrations: [add-email]\n"
            ])
        let action = try #require(
            try await h.reconciler.plan().1?.actions.first {
                $0.target == TargetID(service: "payments", environment: "staging")
            })
        #expect(action.kind == .refuse, "\(action)")
        #expect(action.reason?.contains("add-email was contracted") == true, "\(action.reason ?? "")")
        _ = try await h.pass()
        let staging = await h.live("payments", "staging")
        #expect(staging?.version == nil)
        #expect(!h.executor.requests.contains { $0.environment == "staging" && $0.service == "payments" })
    }

    @Test(
        "a contract is not run on a head that moved during the pass: it is decided again from the new head",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func staleHead(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        let change = try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": M.migration,
                "services/payments.yaml": M.service("2.0", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        h.clock.advance(by: 3600)
        // While the pass runs, a revert arrives (under tide run: a push, fetched before the contract).
        let fixture = h.fixture
        h.reconciler.beforeIrreversible {
            if (try? fixture.git("log", "--format=%s", "-1"))?.contains("Revert") != true {
                _ = try? fixture.revert(change)
            }
        }
        let report = try await h.pass()
        let waits = try #require(report.migrations.first { $0.migration == "add-email" })
        #expect(waits.result == .waiting && waits.message.contains("the branch moved"), "\(waits)")
        #expect(try await db.columns("users").contains("legacy"), "no contract on the stale head")
        _ = try await h.pass()
        await #expect(!(try db.history()).contains("add-email|contract"), "decided from the revert: not contracted")
    }

    @Test(
        "reading never creates the history; a history that went backwards is said loudly and never re-expanded by itself",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func historyWentBackwards(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await M.started(backend)
        try await h.fixture.commit(
            "migration defined, not used yet", files: ["tide/migrations.yaml": M.migration])
        _ = try await h.pass()
        _ = try await h.reconciler.migrations.migrationReport()
        _ = try await h.reconciler.plan()
        #expect(try await db.history() == [], "status, plan and migrations create nothing")
        await #expect(
            try db.query(
                backend == .postgres
                    ? "SELECT count(*) FROM pg_tables WHERE tablename = 'tide_migrations'"
                    : "SELECT count(*) FROM sqlite_master WHERE name = 'tide_migrations'") == ["0"])

        try await h.fixture.commit(
            "payments 2.0 with email", files: ["services/payments.yaml": M.service("2.0", migrations: ["add-email"])])
        _ = try await h.pass()
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])
        // The database is replaced by an older copy: no email column, no history.
        try await db.execute("DROP TABLE tide_migrations")
        try await db.execute("ALTER TABLE users DROP COLUMN email")
        var report = try await h.pass()
        let loud = try #require(report.migrations.first { $0.migration == "add-email" && $0.result == .failed })
        #expect(loud.message.contains("history went backwards"), "\(loud.message)")
        try await h.fixture.commit(
            "payments 2.1", files: ["services/payments.yaml": M.service("2.1", migrations: ["add-email"])])
        report = try await h.pass()
        let refused = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(refused.result == .failed, "\(refused)")
        #expect(refused.message?.contains("tide migrations reapply add-email") == true, "\(refused.message ?? "")")
        #expect(try await db.history() == [], "nothing expanded by itself")
        #expect(try await !db.columns("users").contains("email"))

        await #expect(throws: MigrationCommandError.self) {
            _ = try await h.reconciler.migrations.migrationReapply(
                name: "add-email", environment: "prod", by: "ops", confirmed: false)
        }
        let done = try await h.reconciler.migrations.migrationReapply(
            name: "add-email", environment: "prod", by: "ops", confirmed: true)
        #expect(done.contains("applied again"))
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])
        _ = try await h.reconciler.control(.retry, service: "payments", environment: "prod", by: "ops")
        report = try await h.pass()
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .deployed)
    }

    @Test(
        "an install renamed (a fresh state) adopts its migration once the old owner is quiet, and only then",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func adoptAfterRename(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.emailed(backend)
        let old = try await h.reconciler.migrations.migrationOwner().id
        // The same repository, a fresh state: another install as far as the history is concerned.
        let fresh = try h.makeReconciler(store: InMemoryStateStore())
        _ = try await fresh.reconcile(lockTimeout: 1)
        let before = try #require(try await fresh.migrations.migrationReport().first { $0.migration == "add-email" })
        #expect(!before.ours)
        await #expect(throws: MigrationCommandError.self) {
            _ = try await fresh.migrations.migrationAdopt(name: "add-email", environment: "prod", from: old, by: "ops")
        }
        h.clock.advance(by: 2 * 3600)
        let adopted = try await fresh.migrations.migrationAdopt(
            name: "add-email", environment: "prod", from: old, by: "ops")
        #expect(adopted.contains("this install's now"), "\(adopted)")
        let after = try #require(try await fresh.migrations.migrationReport().first { $0.migration == "add-email" })
        #expect(after.ours)
        _ = try await fresh.reconcile(lockTimeout: 1)
        h.clock.advance(by: 3601)
        _ = try await fresh.reconcile(lockTimeout: 1)
        #expect(try await db.history().last == "add-email|contract", "the new owner contracts it")
    }

    @Test("six environments on a database server that accepts and never answers: one connect timeout, not six")
    func silentServerInParallel() async throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let environments = (1...6).map { "e\($0)" }
        let urls = environments.map {
            "    \($0): {url: \"postgres://tide@127.0.0.1:\(port)/\($0)?sslmode=disable\"}"
        }.joined(separator: "\n")
        let manifests =
            environments.map { "apiVersion: tide/v1\nkind: Environment\nmetadata: {name: \($0)}\nspec: {}\n---\n" }
            .joined()
                + """
                apiVersion: tide/v1
                kind: Executor
                metadata: {name: orders-db}
                spec:
                  type: sql
                  timeout: 3s
                  environments:
                \(urls)

                """
        let h = try Harness()
        try await h.fixture.commit("six environments on one silent server", files: ["tide/db.yaml": manifests])
        await waitUntilThreadsAreResponsive()
        let start = ContinuousClock.now
        let report = try await h.reconciler.migrations.migrationReport()
        let waited = ContinuousClock.now - start
        #expect(report.isEmpty)
        // Connected in parallel: about one 3 s connect timeout (six in a row would be 18 s).
        #expect(waited < .seconds(12), "\(waited)")
    }
}
