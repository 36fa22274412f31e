import Foundation
import Synchronization
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

/// Expand-contract migrations against real databases — an SQLite file and a PostgreSQL cluster on loopback —
/// the same tests for both, advanced pass by pass under a test clock.
@Suite("TideEngine: expand-contract migrations coordinated with rollouts")
struct MigrationTests {
    static func platform(_ url: String) -> String {
        """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: orders-db}
        spec:
          type: sql
          url: "\(url)"

        """
    }

    static let migration = """
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
            up: ["ALTER TABLE users DROP COLUMN legacy"]
            after: 1h

        """

    static func service(_ version: String, migrations: [String] = []) -> String {
        serviceYAML("payments", version: version) + "  migrations: [\(migrations.joined(separator: ", "))]\n"
    }

    /// payments 1.0 runs against a users table with rows; checkout 1.0 never needs migrations.
    static func started(_ backend: SQLDatabaseFixture.Backend) async throws -> (Harness, SQLDatabaseFixture) {
        let db = try SQLDatabaseFixture(backend)
        try await db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, legacy TEXT)",
            "INSERT INTO users (id, name, legacy) VALUES (1, 'ada', 'x'), (2, 'bob', 'y'), (3, 'cy', 'z')")
        let h = try Harness()
        try await h.fixture.commit(
            "payments 1.0", files: ["tide/db.yaml": platform(db.url), "services/payments.yaml": service("1.0")])
        _ = try await h.pass()
        return (h, db)
    }

    /// Columns of `users` each time the executor was asked to deploy payments.
    final class DeployProbe: Sendable {
        let seen = Mutex<[String: [String]]>([:])

        init(_ h: Harness, _ db: SQLDatabaseFixture) {
            h.executor.respond(
                when: { [self] request in
                    if request.action == .deploy && request.service == "payments" {
                        let columns = (try? db.columns("users")) ?? ["?"]
                        seen.withLock { $0[request.version] = columns }
                    }
                    return false
                }, with: "")
        }

        func columns(at version: String) -> [String]? { seen.withLock { $0[version] } }
    }

    @Test(
        "expand and backfill before the rollout; contract only after it and `after`",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func expandThenContract(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.started(backend)
        let probe = DeployProbe(h, db)
        try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": Self.migration,
                "services/payments.yaml": Self.service("2.0", migrations: ["add-email"]),
            ])
        let plan = try await h.reconciler.plan().1
        #expect(plan?.actions.first { $0.target.service == "payments" }?.classification == .migration)

        let report = try await h.pass()
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .deployed)
        #expect(probe.columns(at: "2.0") == ["id", "name", "legacy", "email"], "the new version meets its column")
        await #expect(
            try db.query("SELECT email FROM users ORDER BY id") == [
                "ada@example.com", "bob@example.com", "cy@example.com",
            ])
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])
        let waiting = try #require(report.migrations.first)
        #expect(waiting.phase == .of(.contract) && waiting.result == .waiting)
        #expect(waiting.nextDue == h.clock.now().addingTimeInterval(3600))
        #expect(try await db.columns("users").contains("legacy"), "contract waits for `after`")

        h.clock.advance(by: 1800)
        _ = try await h.pass()
        #expect(try await db.columns("users").contains("legacy"))
        h.clock.advance(by: 1800)
        let contracted = try await h.pass()
        #expect(contracted.migrations.map(\.result) == [.applied])
        #expect(try await db.columns("users") == ["id", "name", "email"])
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill", "add-email|contract"])
        // Checksums and revision are recorded with each phase.
        let head = try await h.fixture.head()
        #expect(try await db.query("SELECT revision FROM tide_migrations WHERE phase = 'expand'") == [head.hex])
        let expandChecksum = try #require(
            try Self.desired(h).migrations["add-email"]?.expand?.checksum)
        #expect(try await db.query("SELECT checksum FROM tide_migrations WHERE phase = 'expand'") == [expandChecksum])
        // Settled: nothing runs again.
        let after = try await h.pass()
        #expect(after.migrations.isEmpty)
        #expect(try await db.history().count == 3)
    }

    static func desired(_ h: Harness) throws -> DesiredState {
        try ManifestLoader().load(
            from: GitCommitSource(
                repository: try Repository.open(at: h.fixture.repoPath), commit: try h.fixture.head(), root: ""))
    }

    @Test(
        "a rollback before contract runs the app back first, then expand's down",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func rollbackBeforeContract(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.started(backend)
        let probe = DeployProbe(h, db)
        let change = try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": Self.migration,
                "services/payments.yaml": Self.service("2.0", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        #expect(try await db.columns("users").contains("email"))

        try await h.fixture.revert(change)
        let report = try await h.pass()
        let outcome = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(outcome.result == .deployed && outcome.classification == .rollback)
        #expect(probe.columns(at: "1.0") == ["id", "name", "legacy", "email"], "the app went back before the schema")
        #expect(report.migrations.map(\.phase) == [.of(.down)])
        #expect(try await db.columns("users") == ["id", "name", "legacy"])
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill", "add-email|down"])
        #expect(await h.live("payments")?.migrations == [])
    }

    @Test(
        "after contract, going back to a version without the migration is refused and changes nothing",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func rollbackAfterContractRefused(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.started(backend)
        let change = try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": Self.migration,
                "services/payments.yaml": Self.service("2.0", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        h.clock.advance(by: 3600)
        _ = try await h.pass()
        #expect(try await db.history().last == "add-email|contract")

        // tide rollback refuses before writing anything (reconcile would refuse the revert anyway).
        let headBefore = try await h.fixture.head()
        await #expect {
            _ = try await h.reconciler.branchWriter.rollbackCommit(service: "payments", environment: "prod")
        } throws: { error in
            "\(error)".contains("which does not list migration add-email, and its contract ran")
        }
        #expect(try await h.fixture.head() == headBefore, "no commit written")

        try await h.fixture.revert(change)
        let plan = try #require(try await h.reconciler.plan().1)
        let refused = try #require(plan.actions.first { $0.target.service == "payments" })
        #expect(refused.kind == .refuse)
        #expect(refused.reason?.contains("migration add-email was contracted in prod") == true)
        #expect(refused.reason?.contains("Roll forward") == true)
        h.executor.reset()
        let report = try await h.pass()
        #expect(report.hasFailures)
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .held)
        #expect(h.executor.requests.filter { $0.service == "payments" }.isEmpty, "the live app is left alone")
        // A refusal is not a failure of what runs: the target stays Healthy at 2.0, with the refusal shown.
        let refusedLive = try #require(await h.live("payments"))
        #expect(refusedLive.version == "2.0")
        #expect(refusedLive.phase == .healthy)
        #expect(refusedLive.failed == nil)
        #expect(refusedLive.waiting?.contains("refused 1.0") == true)
        #expect(try await db.columns("users") == ["id", "name", "email"], "and so is the database")
        #expect(try await db.history().count == 3)
        // The next pass holds it, and still touches nothing.
        let again = try await h.pass()
        #expect(again.outcomes.first { $0.target.service == "payments" }?.result == .held)
        #expect(await h.store.events(EventQuery(kinds: [.rolloutRefused], limit: 10)).count == 1)

        // Rolling forward after the refusal: 3.0 never ran here, so it is no ROLLBACK (which would pass every
        // gate), though the revert is in the range since what runs.
        try await h.fixture.commit(
            "payments 3.0",
            files: [
                "tide/migrations.yaml": Self.migration,
                "services/payments.yaml": Self.service("3.0", migrations: ["add-email"]),
            ])
        let forward = try #require(try await h.reconciler.plan().1?.actions.first { $0.target.service == "payments" })
        #expect(forward.kind == .deploy || forward.kind == .wait)
        #expect(forward.classification == .feature)
        #expect(forward.reason?.contains("not a rollback") == true)
    }

    @Test(
        "a failing statement leaves nothing half-done and the rollout does not start",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func failingStatement(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.started(backend)
        let broken = Self.migration.replacingOccurrences(
            of: #"up: ["ALTER TABLE users ADD COLUMN email TEXT"]"#,
            with: #"up: ["ALTER TABLE users ADD COLUMN email TEXT", "ALTER TABLE no_such_table ADD COLUMN x TEXT"]"#)
        try await h.fixture.commit(
            "payments 2.0 with a broken expand",
            files: [
                "tide/migrations.yaml": broken,
                "services/payments.yaml": Self.service("2.0", migrations: ["add-email"]),
            ])
        h.executor.reset()
        let report = try await h.pass()
        let outcome = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(outcome.result == .failed)
        #expect(outcome.message?.hasPrefix("migration add-email: prod: ") == true, "\(outcome.message ?? "")")
        #expect(outcome.message?.contains("no_such_table") == true, "\(outcome.message ?? "")")
        #expect(try await db.columns("users") == ["id", "name", "legacy"], "the first statement was rolled back too")
        #expect(try await db.history().isEmpty)
        #expect(h.executor.requests.filter { $0.service == "payments" }.isEmpty)
        #expect(await h.live("payments")?.version == "1.0")
        let events = await h.store.events(EventQuery(kinds: [.migrationFailed]))
        #expect(events.count == 1)
        // Fixing the migration is a new desired state: it is tried again.
        try await h.fixture.commit(
            "fix the expand", files: ["tide/migrations.yaml": Self.migration])
        let fixed = try await h.pass()
        #expect(fixed.outcomes.first { $0.target.service == "payments" }?.result == .deployed)
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])
    }

    @Test(
        "an edited applied phase is caught, naming the migration and phase",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func editedPhase(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.started(backend)
        try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": Self.migration,
                "services/payments.yaml": Self.service("2.0", migrations: ["add-email"]),
            ])
        _ = try await h.pass()
        let edited = Self.migration.replacingOccurrences(
            of: "ADD COLUMN email TEXT", with: "ADD COLUMN email VARCHAR(200)")
        try await h.fixture.commit(
            "payments 2.1, expand edited",
            files: [
                "tide/migrations.yaml": edited,
                "services/payments.yaml": Self.service("2.1", migrations: ["add-email"]),
            ])
        // The plan says what reconcile will say — not "config changed".
        let planned = try #require(try await h.reconciler.plan().1?.actions.first { $0.target.service == "payments" })
        #expect(planned.kind == .refuse)
        #expect(planned.reason?.hasPrefix("migration add-email: spec.expand was applied at ") == true)
        let report = try await h.pass()
        let outcome = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(outcome.result == .held)
        #expect(
            outcome.message?.contains("refused 2.1: migration add-email: spec.expand was applied at ") == true,
            "\(outcome.message ?? "")")
        #expect(outcome.message?.contains("an applied phase cannot be edited") == true)
        #expect(await h.live("payments")?.version == "2.0")
        #expect(await h.live("payments")?.phase == .healthy, "what runs did not fail")
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])
    }

    @Test(
        "a batched backfill runs round after round until nothing changes",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func batchedBackfill(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.started(backend)
        try await db.execute("INSERT INTO users (id, name) VALUES (4, 'di'), (5, 'ed'), (6, 'fay'), (7, 'gus')")
        let batched = Self.migration.replacingOccurrences(
            of: #"up: ["UPDATE users SET email = name || '@example.com' WHERE email IS NULL"]"#,
            with: #"""
                up: ["UPDATE users SET email = name || '@example.com' WHERE id IN (SELECT id FROM users WHERE email IS NULL ORDER BY id LIMIT {{batch}})"]
                    batchSize: 2
                """#)
        try await h.fixture.commit(
            "payments 2.0, batched backfill",
            files: [
                "tide/migrations.yaml": batched,
                "services/payments.yaml": Self.service("2.0", migrations: ["add-email"]),
            ])
        let report = try await h.pass()
        #expect(report.outcomes.first { $0.target.service == "payments" }?.result == .deployed, "\(report.outcomes)")
        #expect(try await db.query("SELECT count(*) FROM users WHERE email IS NULL") == ["0"])
        #expect(try await db.history() == ["add-email|expand", "add-email|backfill"])
    }

    @Test(
        "two reconcilers with their own state on one database apply each phase once",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func concurrentReconcilers(_ backend: SQLDatabaseFixture.Backend) async throws {
        let (h, db) = try await Self.started(backend)
        try await h.fixture.commit(
            "payments 2.0 with email",
            files: [
                "tide/migrations.yaml": Self.migration.replacingOccurrences(of: "after: 1h", with: "after: 0s"),
                "services/payments.yaml": Self.service("2.0", migrations: ["add-email"]),
            ])
        let others = try (0..<3).map { _ in
            try h.makeReconciler(at: h.fixture.repoPath, store: InMemoryStateStore(), executors: RecordingExecutor())
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for reconciler in others + [h.reconciler] {
                group.addTask {
                    _ = try await reconciler.reconcile(lockTimeout: 30)
                    _ = try await reconciler.reconcile(lockTimeout: 30)
                }
            }
            try await group.waitForAll()
        }
        // The installs that did not expand it said they use it, then that they are ready: a pass or two later its
        // owner contracts.
        for _ in 0..<2 {
            for reconciler in others + [h.reconciler] { _ = try await reconciler.reconcile(lockTimeout: 30) }
        }
        let rows = try await db.history()
        #expect(
            rows.filter { !$0.hasSuffix("|use") && !$0.hasSuffix("|ready") } == [
                "add-email|expand", "add-email|backfill", "add-email|contract",
            ], "\(rows)")
        #expect(try await db.columns("users") == ["id", "name", "email"])
    }
}
