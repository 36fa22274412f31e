import Foundation
import Testing
import TideManifest
import TideTestSupport

@testable import TideExecutors

#if canImport(Glibc)
    import Glibc
#endif

/// Round three of the migration databases' bounds: statements outside a transaction wait for their locks no
/// longer than inside one; SQLite lets the application read while Tide writes and waits for it only briefly; a
/// backfill that cannot finish stops; reading never creates anything.
@Suite("TideExecutors: migration databases never wait without bound, and reading writes nothing")
struct MigrationBoundsTests {
    typealias D = MigrationDatabaseTests

    @Test(
        "PostgreSQL: a transaction: false ALTER TABLE behind a long reader gives up after lock_timeout, tried a bounded number of times"
    )
    func outsideTransactionLockTimeout() async throws {
        await waitUntilThreadsAreResponsive()
        let server = try PostgresServer.start()
        let name = try await server.makeDatabase()
        let db = try SQLDatabaseFixture(server: server, database: name)
        try D.users(db)
        let gate = try await D.open(server.url(name))
        _ = try await gate.apply(
            MigrationRun(["SELECT pg_advisory_lock(4343)"], transaction: false), record: D.record("gate"),
            due: D.due("gate"))
        let holder = D.psqlInBackground(
            server, name, "BEGIN; SELECT count(*) FROM users; SELECT pg_advisory_lock(4343); COMMIT;")
        _ = try await D.backend(server, name, running: "pg_advisory_lock(4343); COMMIT")

        let impatient = try await D.open(
            server.url(name), limits: MigrationLimits(phase: .seconds(60), lock: .milliseconds(300), lockAttempts: 3))
        let start = ContinuousClock.now
        let error = await #expect(throws: MigrationError.self) {
            try await D.within(60) {
                try await impatient.apply(
                    MigrationRun(["ALTER TABLE users ADD COLUMN phone TEXT"], transaction: false),
                    record: D.record("phone", .expand), due: D.due("phone"))
            }
        }
        let waited = ContinuousClock.now - start
        await impatient.close()
        #expect(error?.isTransient == true, "\(String(describing: error))")
        #expect(error?.sqlState == "55P03", "\(String(describing: error))")
        #expect(error?.description.contains("tried 3 times") == true, "\(String(describing: error))")
        // Three tries of 300 ms and their pauses, not the 60 s the phase may take.
        #expect(waited < .seconds(20), "\(waited)")
        #expect(try await !db.columns("users").contains("phone"))
        await gate.close()
        _ = try await D.within(30) { try await holder.value }
    }

    @Test("SQLite: Tide's writes switch the database to WAL, and a writer holding it keeps Tide waiting only briefly")
    func sqliteShortLockWait() async throws {
        let db = try SQLDatabaseFixture(.sqlite)
        try D.users(db)
        let path = String(db.url.dropFirst("sqlite:".count))
        let database = try await D.open(
            db.url, limits: MigrationLimits(phase: .seconds(60), lock: .milliseconds(200), lockAttempts: 3))
        #expect(
            try await database.apply(
                MigrationRun(["ALTER TABLE users ADD COLUMN phone TEXT"]), record: D.record("phone", .expand),
                due: D.due("phone")))
        #expect(try await db.query("PRAGMA journal_mode") == ["wal"], "readers go on while Tide writes")

        let holding = path + ".holding"
        let other = try BackgroundProcess(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
                    + "c.execute('BEGIN IMMEDIATE'); c.execute('UPDATE users SET n = n + 1'); "
                    + "open(sys.argv[2], 'w').close(); time.sleep(120)",
                path, holding,
            ])
        defer { other.signal(SIGKILL) }
        for _ in 0..<400 where !FileManager.default.fileExists(atPath: holding) {
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(FileManager.default.fileExists(atPath: holding))
        // A reader is not blocked by the writer (WAL).
        let read = try await runProcess(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0.1); "
                    + "print(c.execute('SELECT count(*) FROM users').fetchone()[0])",
                path,
            ])
        #expect(read.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "10", "\(read.combined)")
        await waitUntilThreadsAreResponsive()
        let start = ContinuousClock.now
        let busy = await #expect(throws: MigrationError.self) {
            try await D.within(60) {
                try await database.apply(
                    MigrationRun(["ALTER TABLE users ADD COLUMN fax TEXT"]), record: D.record("fax", .expand),
                    due: D.due("fax"))
            }
        }
        #expect(busy?.isTransient == true, "\(String(describing: busy))")
        #expect(busy?.description.contains("tried 3 times") == true, "\(String(describing: busy))")
        #expect(ContinuousClock.now - start < .seconds(20), "not the 60 s of the phase")
        await database.close()
    }

    @Test(
        "a batched backfill that changes the same rows round after round stops at once, with why",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func backfillNotConverging(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try D.users(db, count: 5)
        let database = try await D.open(db.url)
        // Rows it cannot change stay matched: email stays NULL, so every round takes the same 5 rows.
        let error = await #expect(throws: MigrationError.self) {
            try await D.within(60) {
                try await database.apply(
                    MigrationRun(
                        [
                            "UPDATE users SET email = NULL WHERE id IN "
                                + "(SELECT id FROM users WHERE email IS NULL ORDER BY id LIMIT {{batch}})"
                        ], batchSize: 100),
                    record: D.record("never"), due: D.due("never"))
            }
        }
        await database.close()
        #expect(error?.isTransient == false)
        #expect(
            error?.description.contains("changed the same 5 rows in each of its last 3 rounds") == true,
            "\(String(describing: error))")
        #expect(try await db.history() == [])
    }

    @Test(
        "reading the history creates neither the SQLite file nor the table",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func readingWritesNothing(_ backend: SQLDatabaseFixture.Backend) async throws {
        let scratch = try TemporaryDirectory("tide-read")
        let fixture = backend == .postgres ? try SQLDatabaseFixture(.postgres) : nil
        let url = fixture?.url ?? "sqlite:\(scratch.appending("missing.sqlite"))"
        let database = try await D.open(url)
        #expect(try await database.records() == [])
        await database.close()
        if let fixture {
            await #expect(
                try fixture.query("SELECT count(*) FROM pg_tables WHERE tablename = 'tide_migrations'") == ["0"])
        } else {
            #expect(!FileManager.default.fileExists(atPath: scratch.appending("missing.sqlite")))
        }
    }
}
