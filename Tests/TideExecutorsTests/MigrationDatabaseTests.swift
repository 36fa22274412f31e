import Foundation
import Synchronization
import Testing
import TideManifest
import TideTestSupport

@testable import TideExecutors

#if canImport(Glibc)
    import Glibc
#endif

/// The migration databases against real SQLite files and a real PostgreSQL 15: bounded waits, transient errors,
/// batched backfills, `transaction: false`, TLS. Every test bounds its own time, so a regression fails instead of
/// hanging.
@Suite("TideExecutors: migration databases (SQLite, PostgreSQL)")
struct MigrationDatabaseTests {
    static func open(
        _ url: String, limits: MigrationLimits = MigrationLimits(phase: .seconds(120))
    ) async throws -> any MigrationDatabase {
        var executor = ExecutorManifest(
            name: "db", location: SourceLocation(file: "db.yaml", line: 1, column: 1), type: .sql, command: [])
        executor.database = DatabaseSpec(url: try DatabaseURL(parsing: url))
        return try await MigrationDatabases.open(executor, environment: "prod", workingDirectory: "/", limits: limits)
    }

    static func record(_ name: String, _ phase: MigrationRecord.Phase = .backfill) -> MigrationRecord {
        MigrationRecord(
            name: name, phase: phase, checksum: "c", revision: "r", appliedAt: Date(), durationMilliseconds: 0)
    }

    /// Due while no row of `name` is in the history.
    static func due(_ name: String) -> @Sendable ([MigrationRecord]) -> Bool {
        { records in !records.contains { $0.name == name } }
    }

    /// Fails the test after `seconds` instead of waiting for a call that never returns.
    static func within<T: Sendable>(
        _ seconds: Int, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withTimeout(seconds: seconds, body)
    }

    /// `users` with `count` rows and no email yet.
    static func users(_ db: SQLDatabaseFixture, count: Int = 10) throws {
        try db.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, n INTEGER NOT NULL DEFAULT 0, "
                + "CHECK (email IS NULL OR email <> 'bad@x'))")
        let rows = (1...count).map { "(\($0), 'u\($0)')" }.joined(separator: ", ")
        try db.execute("INSERT INTO users (id, name) VALUES \(rows)")
    }

    static let fillEmails =
        "UPDATE users SET email = lower(name) || '@x' WHERE id IN "
        + "(SELECT id FROM users WHERE email IS NULL ORDER BY id LIMIT {{batch}})"

    static func idle(_ backend: SQLDatabaseFixture.Backend) -> String {
        backend == .postgres ? "SELECT pg_sleep(0.01)" : "SELECT count(*) FROM users"
    }

    // MARK: Batched backfill

    @Test(
        "a batched backfill counts rows changed by INSERT/UPDATE/DELETE only: a SELECT in the list ends no later",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func backfillCountsChangedRows(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try Self.users(db)
        let database = try await Self.open(db.url)
        let ran = try await Self.within(150) {
            try await database.apply(
                MigrationRun([Self.idle(backend), Self.fillEmails, Self.idle(backend)], batchSize: 3, maxRounds: 20),
                record: Self.record("fill"), due: Self.due("fill"))
        }
        await database.close()
        #expect(ran)
        #expect(try await db.query("SELECT count(*) FROM users WHERE email IS NULL") == ["0"])
        #expect(try await db.history() == ["fill|backfill"])
    }

    @Test(
        "a batched backfill that changes rows every round stops at maxRounds, keeping the rounds it committed",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func backfillMaxRounds(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try Self.users(db, count: 4)
        let database = try await Self.open(db.url)
        let error = await #expect(throws: MigrationError.self) {
            try await Self.within(150) {
                try await database.apply(
                    MigrationRun(
                        ["UPDATE users SET n = n + 1 WHERE id IN (SELECT id FROM users ORDER BY id LIMIT {{batch}})"],
                        batchSize: 2, maxRounds: 5),
                    record: Self.record("forever"), due: Self.due("forever"))
            }
        }
        await database.close()
        #expect(error?.isTransient == false)
        #expect(error?.partial == true)
        #expect(error?.description.contains("maxRounds") == true, "\(String(describing: error))")
        #expect(try await db.query("SELECT n FROM users ORDER BY id") == ["5", "5", "0", "0"])
        #expect(try await db.history() == [])
    }

    @Test(
        "a failing round keeps the rounds before it; run again, the backfill goes on from there",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func backfillFailureKeepsRounds(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try Self.users(db)
        try await db.execute("UPDATE users SET name = 'BAD' WHERE id = 8")  // its email breaks the CHECK
        let database = try await Self.open(db.url)
        let run = MigrationRun([Self.fillEmails], batchSize: 3)
        let error = await #expect(throws: MigrationError.self) {
            try await Self.within(150) {
                try await database.apply(run, record: Self.record("fill"), due: Self.due("fill"))
            }
        }
        #expect(error?.partial == true)
        #expect(error?.isTransient == false)
        #expect(
            error?.description.contains("the 2 rounds before it stay committed") == true, "\(String(describing: error))"
        )
        #expect(try await db.query("SELECT count(*) FROM users WHERE email IS NOT NULL") == ["6"])
        #expect(try await db.history() == [])

        try await db.execute("UPDATE users SET name = 'ok' WHERE id = 8")
        let ran = try await Self.within(150) {
            try await database.apply(run, record: Self.record("fill"), due: Self.due("fill"))
        }
        await database.close()
        #expect(ran)
        #expect(try await db.query("SELECT count(*) FROM users WHERE email IS NULL") == ["0"])
        #expect(try await db.history() == ["fill|backfill"])
    }

    @Test(
        "a failing statement rolls its whole phase back: permanent, nothing kept",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func failingPhaseRollsBack(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try Self.users(db)
        let database = try await Self.open(db.url)
        let error = await #expect(throws: MigrationError.self) {
            try await Self.within(150) {
                try await database.apply(
                    MigrationRun(["ALTER TABLE users ADD COLUMN phone TEXT", "ALTER TABLE nowhere ADD COLUMN x TEXT"]),
                    record: Self.record("phone", .expand), due: Self.due("phone"))
            }
        }
        await database.close()
        #expect(error?.isTransient == false)
        #expect(error?.partial == false)
        #expect(error?.sqlState == (backend == .postgres ? "42P01" : nil))
        #expect(try await !db.columns("users").contains("phone"))
        #expect(try await db.history() == [])
    }

    // MARK: transaction: false

    static func concurrentIndex(_ backend: SQLDatabaseFixture.Backend) -> String {
        backend == .postgres ? "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email)" : "VACUUM"
    }

    @Test(
        "transaction: false runs statements one by one; a failure keeps those before it; the down runs so too",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func outsideTransaction(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try Self.users(db)
        let database = try await Self.open(db.url)
        let statements = [
            "CREATE TABLE IF NOT EXISTS marks (x INTEGER)", Self.concurrentIndex(backend),
            "INSERT INTO nowhere VALUES (1)",
        ]
        var phase = MigrationManifest.Phase(
            up: statements, location: SourceLocation(file: "m.yaml", line: 1, column: 1))
        phase.transaction = false
        phase.down = ["DROP TABLE marks"]
        let failing = phase
        let error = await #expect(throws: MigrationError.self) {
            try await Self.within(150) {
                try await database.apply(failing, record: Self.record("index", .expand), due: Self.due("index"))
            }
        }
        #expect(error?.partial == true)
        #expect(error?.done == 2)
        #expect(
            error?.description.contains("2 of its 3 statements stay applied") == true, "\(String(describing: error))")
        #expect(error?.description.contains("goes on from statement 3") == true, "\(String(describing: error))")
        #expect(try await db.query("SELECT count(*) FROM marks") == ["0"])
        // Recorded half done, statement by statement: never taken for "as before".
        #expect(try await db.history().allSatisfy { $0 == "index|partial" })
        let partial = try #require(MigrationStatus.fold(try await database.records())["index"]?.partial)
        #expect(partial.phase == .expand && partial.done == 2 && partial.total == 3)
        #expect(partial.failure?.contains("nowhere") == true, "\(partial)")
        if backend == .postgres {
            await #expect(
                try db.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email'::regclass") == ["t"])
        }

        // Fixed, it goes on from the failing statement: the ones before it do not run again.
        phase.up[2] = "INSERT INTO marks VALUES (1)"
        let fixed = phase
        var run = MigrationRun(fixed)
        run.resumeFrom = partial.done
        let resumed = run
        let ran = try await Self.within(150) {
            try await database.apply(
                fixed, run: resumed, record: Self.record("index", .expand),
                due: { MigrationStatus.fold($0)["index"]?.expand == nil })
        }
        #expect(ran)
        #expect(try await db.query("SELECT count(*) FROM marks") == ["1"])
        #expect(try await db.history().filter { !$0.hasSuffix("|partial") } == ["index|expand"])
        #expect(MigrationStatus.fold(try await database.records())["index"]?.partial == nil)
        let expand = try #require(try await database.records().first { $0.phase == .expand })
        #expect(!expand.downInTransaction)
        #expect(MigrationRun(down: expand) == MigrationRun(["DROP TABLE marks"], transaction: false))
        await database.close()
    }

    @Test(
        "two processes running one transaction: false phase at once: it runs once",
        arguments: SQLDatabaseFixture.Backend.allCases)
    func outsideTransactionOnce(_ backend: SQLDatabaseFixture.Backend) async throws {
        let db = try SQLDatabaseFixture(backend)
        try await db.execute("CREATE TABLE marks (x INTEGER)")
        let first = try await Self.open(db.url)
        let second = try await Self.open(db.url)
        let idle = backend == .postgres ? "SELECT pg_sleep(0.2)" : "SELECT count(*) FROM marks"
        let run = MigrationRun(
            ["INSERT INTO marks VALUES (1)", idle, "INSERT INTO marks VALUES (2)"], transaction: false)
        let ran = try await Self.within(150) {
            async let a = first.apply(run, record: Self.record("marks", .expand), due: Self.due("marks"))
            async let b = second.apply(run, record: Self.record("marks", .expand), due: Self.due("marks"))
            return try await [a, b]
        }
        await first.close()
        await second.close()
        #expect(ran.sorted { !$0 && $1 } == [false, true])
        #expect(try await db.query("SELECT x FROM marks ORDER BY x") == ["1", "2"])
        #expect(try await db.history().filter { !$0.hasSuffix("|partial") } == ["marks|expand"])
    }

    // MARK: Bounded waits, PostgreSQL

    /// The pid of the backend in `database` whose query contains `text`, once there is one.
    static func backend(
        _ server: PostgresServer, _ database: String, running text: String, application: String? = nil
    ) async throws -> Int32 {
        for _ in 0..<400 {
            let output = try await server.psql(
                database,
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    + "AND state = 'active' AND query LIKE '%\(text)%'"
                    + (application.map { " AND application_name = '\($0)'" } ?? ""))
            if let pid = Int32(output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) { return pid }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw FixtureError("no backend runs \(text)")
    }

    /// Runs psql off the cooperative pool (it blocks its thread until psql exits).
    static func psqlInBackground(_ server: PostgresServer, _ database: String, _ sql: String) -> Task<
        ProcessOutput, any Error
    > {
        Task {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(with: Result { try server.psql(database, sql) })
                }
            }
        }
    }

    @Test(
        "PostgreSQL: a statement that cannot get its lock gives up after lock_timeout, reads are not queued behind it, and it is tried again"
    )
    func lockTimeout() async throws {
        await waitUntilThreadsAreResponsive()
        let server = try PostgresServer.start()
        let name = try await server.makeDatabase()
        let db = try SQLDatabaseFixture(server: server, database: name)
        try Self.users(db)
        // A reader holds ACCESS SHARE on users until the test lets it go (it waits for advisory lock 4242, which
        // the gate's session holds): ALTER TABLE waits for it, and every query queued after the ALTER would too.
        let gate = try await Self.open(server.url(name))
        _ = try await gate.apply(
            MigrationRun(["SELECT pg_advisory_lock(4242)"], transaction: false), record: Self.record("gate"),
            due: Self.due("gate"))
        let holder = Self.psqlInBackground(
            server, name, "BEGIN; SELECT count(*) FROM users; SELECT pg_advisory_lock(4242); COMMIT;")
        _ = try await Self.backend(server, name, running: "pg_advisory_lock(4242); COMMIT")

        // Three tries of 300 ms: it gives up, transient, and the column is not there.
        let impatient = try await Self.open(
            server.url(name), limits: MigrationLimits(phase: .seconds(60), lock: .milliseconds(300), lockAttempts: 3))
        let error = await #expect(throws: MigrationError.self) {
            try await Self.within(150) {
                try await impatient.apply(
                    MigrationRun(["ALTER TABLE users ADD COLUMN phone TEXT"]), record: Self.record("phone", .expand),
                    due: Self.due("phone"))
            }
        }
        await impatient.close()
        #expect(error?.isTransient == true)
        #expect(error?.sqlState == "55P03")
        #expect(error?.description.contains("tried 3 times") == true, "\(String(describing: error))")
        #expect(try await !db.columns("users").contains("phone"))

        // Enough tries to outlast the reader. While they go on, the application still reads users: each try
        // leaves the lock queue after 300 ms, so a read waits no longer than that behind it (without a
        // lock_timeout it would wait as long as the reader, here for ever).
        let patient = try await Self.open(
            server.url(name), limits: MigrationLimits(phase: .seconds(60), lock: .milliseconds(300), lockAttempts: 1000)
        )
        let altering = Task {
            try await Self.within(90) {
                try await patient.apply(
                    MigrationRun(["ALTER TABLE users ADD COLUMN phone TEXT"]), record: Self.record("phone", .expand),
                    due: Self.due("phone"))
            }
        }
        _ = try await Self.backend(server, name, running: "ADD COLUMN phone", application: "tide")
        let read = try await Self.within(90) {
            try await Self.psqlInBackground(server, name, "SELECT count(*) FROM users").value
        }
        #expect(read.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "10", "\(read.combined)")
        #expect(try await !db.columns("users").contains("phone"), "the reader still holds its lock")

        await gate.close()
        _ = try await Self.within(90) { try await holder.value }
        let ran = try await altering.value
        await patient.close()
        #expect(ran)
        #expect(try await db.columns("users").contains("phone"))
    }

    @Test(
        "PostgreSQL: a server that stops answering mid-phase (SIGSTOP) ends the phase at its timeout, rolled back")
    func stoppedServer() async throws {
        await waitUntilThreadsAreResponsive()
        // A server of its own: a stopped backend of the shared one would hold up the other tests using it.
        let server = try PostgresServer.startDedicated()
        defer { try? server.stop() }
        let name = try await server.makeDatabase()
        let db = try SQLDatabaseFixture(server: server, database: name)
        // 20 s: setting up the history runs under the same limit, and other tests keep this machine busy.
        let database = try await Self.open(server.url(name), limits: MigrationLimits(phase: .seconds(20)))
        let start = ContinuousClock.now
        let attempt = Task {
            try await Self.within(150) {
                try await database.apply(
                    MigrationRun(["CREATE TABLE t2 (x INTEGER)", "SELECT pg_sleep(600)"]),
                    record: Self.record("t2", .expand), due: Self.due("t2"))
            }
        }
        let pid = try await Self.backend(server, name, running: "pg_sleep(600)", application: "tide")
        kill(pid, SIGSTOP)
        let result = await attempt.result
        let elapsed = ContinuousClock.now - start
        kill(pid, SIGCONT)
        _ = try await server.psql(name, "SELECT pg_terminate_backend(\(pid))")
        let error = try #require(
            { () -> MigrationError? in
                if case .failure(let error) = result { return error as? MigrationError }
                return nil
            }())
        #expect(error.isTransient, "\(error)")
        #expect(error.description.contains("did not answer"), "\(error)")
        #expect(elapsed < .seconds(45), "the phase took \(elapsed)")
        // Terminated, its transaction goes with it.
        for _ in 0..<200 {
            let left = try await server.psql(name, "SELECT count(*) FROM pg_stat_activity WHERE pid = \(pid)")
            if left.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "0" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await db.query("SELECT count(*) FROM pg_tables WHERE tablename = 't2'") == ["0"])
        #expect(try await db.history() == [])
        await database.close()
    }

    @Test(
        "PostgreSQL: a server that crashes mid-phase (pg_ctl stop -m immediate): a transient error at once; after the restart the phase runs"
    )
    func crashedServer() async throws {
        let server = try PostgresServer.startDedicated()
        defer { try? server.stop() }
        let name = try await server.makeDatabase()
        let db = try SQLDatabaseFixture(server: server, database: name)
        try await db.execute("CREATE TABLE slow (seconds INTEGER)", "INSERT INTO slow VALUES (600)")
        let limits = MigrationLimits(phase: .seconds(90))
        let database = try await Self.open(server.url(name), limits: limits)
        let run = MigrationRun(["CREATE TABLE t2 (x INTEGER)", "SELECT pg_sleep(seconds) FROM slow"])
        let attempt = Task {
            try await Self.within(120) {
                try await database.apply(run, record: Self.record("t2", .expand), due: Self.due("t2"))
            }
        }
        _ = try await Self.backend(server, name, running: "pg_sleep(seconds)", application: "tide")
        let crash = ContinuousClock.now
        try server.stop(mode: "immediate")
        let error = await #expect(throws: MigrationError.self) { try await attempt.value }
        #expect(error?.isTransient == true, "\(String(describing: error))")
        // The server said goodbye (57P01) or just went: either way long before the 90s timeout.
        #expect(ContinuousClock.now - crash < .seconds(30), "\(String(describing: error))")
        await database.close()

        // Down: refused at once, and transient.
        let refused = await #expect(throws: MigrationError.self) {
            try await Self.within(150) { try await Self.open(server.url(name), limits: limits) }
        }
        #expect(refused?.isTransient == true, "\(String(describing: refused))")
        #expect(refused?.description.contains("cannot connect to postgres://tide@127.0.0.1") == true)

        try server.start()
        try await db.execute("UPDATE slow SET seconds = 0")
        let again = try await Self.open(server.url(name), limits: limits)
        let ran = try await Self.within(90) {
            try await again.apply(run, record: Self.record("t2", .expand), due: Self.due("t2"))
        }
        let history = try await again.records().map(\.name)
        await again.close()
        #expect(ran)
        #expect(history == ["t2"])
    }

    @Test(
        "PostgreSQL: a server that accepts the connection and says nothing: connecting ends within the connect timeout")
    func silentServer() async throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let start = ContinuousClock.now
        let error = await #expect(throws: MigrationError.self) {
            try await Self.within(150) {
                try await Self.open(
                    "postgres://tide@127.0.0.1:\(port)/app?sslmode=disable",
                    limits: MigrationLimits(phase: .seconds(30), connect: .seconds(1)))
            }
        }
        #expect(error?.isTransient == true, "\(String(describing: error))")
        #expect(
            error?.description.hasPrefix("cannot connect to postgres://tide@127.0.0.1:\(port)/app") == true,
            "\(String(describing: error))")
        // Bounded, not fast: on two busy cores (the whole suite at once) the timer can fire late.
        #expect(ContinuousClock.now - start < .seconds(45))
    }

    @Test("the indexes CREATE INDEX CONCURRENTLY statements build, for the invalid-index check")
    func concurrentIndexNames() {
        #expect(
            PostgresMigrationDatabase.concurrentIndexes(in: [
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_mail ON users (mail)",
                "create unique index concurrently \"Users_Name\" on users (name)",
                "CREATE INDEX users_plain ON users (x)", "ALTER TABLE users ADD COLUMN y TEXT",
            ]) == ["users_mail", "Users_Name"])
    }

    @Test("PostgreSQL: reading the history does not queue behind a phase another process is running")
    func readsDoNotQueueBehindAPhase() async throws {
        let db = try SQLDatabaseFixture(.postgres)
        // The phase's own time well above its 15 s: on a loaded machine the test is about the reader, not that.
        let runner = try await Self.open(db.url, limits: MigrationLimits(phase: .seconds(120)))
        let slow = Task {
            try await runner.apply(
                MigrationRun(["SELECT pg_sleep(15)"]), record: Self.record("slow", .expand), due: Self.due("slow"))
        }
        // Wait until the phase holds the migration lock.
        for _ in 0..<200 {
            if try await db.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") != ["0"] {
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let start = ContinuousClock.now
        let reader = try await Self.within(90) { try await Self.open(db.url) }
        let history = try await reader.records()
        let waited = ContinuousClock.now - start
        await reader.close()
        #expect(history.isEmpty)
        // The phase sleeps 15 s holding the lock; a reader that queued behind it would wait that long (a loaded
        // machine takes seconds to connect, well under that).
        #expect(waited < .seconds(10), "the reader waited \(waited)")
        _ = try await slow.value
        await runner.close()
    }

    @Test(
        "PostgreSQL: statement_timeout comes from the executor's timeout; running out of it fails the phase (not transient)"
    )
    func statementTimeout() async throws {
        await waitUntilThreadsAreResponsive()
        let db = try SQLDatabaseFixture(.postgres)
        let database = try await Self.open(
            db.url, limits: MigrationLimits(phase: .seconds(20), connect: .seconds(10)))
        let start = ContinuousClock.now
        let error = await #expect(throws: MigrationError.self) {
            try await Self.within(150) {
                try await database.apply(
                    MigrationRun(["SELECT pg_sleep(60)"]), record: Self.record("slow", .expand),
                    due: Self.due("slow"))
            }
        }
        await database.close()
        // Running out of its own time is not the database's fault: tried again it would run out again.
        #expect(error?.isTransient == false)
        #expect(error?.sqlState == "57014", "\(String(describing: error))")
        #expect(error?.description.contains("not tried again by itself") == true, "\(String(describing: error))")
        #expect(ContinuousClock.now - start < .seconds(55))
        #expect(try await db.history() == [])
    }

    // MARK: Bounded waits, SQLite

    static let burn =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT count(*) FROM c"

    @Test(
        "SQLite: a statement still running at the deadline is interrupted; a database another writer holds is busy, transient, within the timeout"
    )
    func sqliteBounded() async throws {
        let db = try SQLDatabaseFixture(.sqlite)
        try await db.execute("CREATE TABLE marks (x INTEGER)")
        let path = String(db.url.dropFirst("sqlite:".count))
        let scratch = try TemporaryDirectory("tide-sqlite-lock")
        let holding = scratch.appending("holding")
        // Opened (history table made) before anyone holds the file.
        let waiter = try await Self.open(db.url, limits: MigrationLimits(phase: .milliseconds(500)))
        let holder = try await Self.open(db.url, limits: MigrationLimits(phase: .seconds(8)))

        // Another writer holds the database (BEGIN IMMEDIATE, then waits): a phase gets a transient "busy" within
        // its timeout. The holder is its own process, so how late this test's task resumes cannot end the hold.
        let other = try BackgroundProcess(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
                    + "c.execute('BEGIN IMMEDIATE'); c.execute('INSERT INTO marks VALUES (3)'); "
                    + "open(sys.argv[2], 'w').close(); time.sleep(120)",
                path, holding,
            ])
        defer { other.signal(SIGKILL) }
        for _ in 0..<400 where !FileManager.default.fileExists(atPath: holding) {
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(FileManager.default.fileExists(atPath: holding))
        // Timed from a moment the cooperative threads answer (other tests may hold them for seconds).
        await waitUntilThreadsAreResponsive()
        let waited = ContinuousClock.now
        let busy = await #expect(throws: MigrationError.self) {
            try await Self.within(90) {
                try await waiter.apply(
                    MigrationRun(["INSERT INTO marks VALUES (2)"]), record: Self.record("wait", .expand),
                    due: Self.due("wait"))
            }
        }
        #expect(busy?.isTransient == true, "\(String(describing: busy))")
        #expect(ContinuousClock.now - waited < .seconds(15))
        await waiter.close()
        other.signal(SIGKILL)
        _ = await other.waitForExit(timeout: 10)

        // A statement still running at the phase's deadline is interrupted: the phase fails (running out of its own
        // time is not transient), nothing kept.
        await waitUntilThreadsAreResponsive()
        let start = ContinuousClock.now
        let interrupted = await #expect(throws: MigrationError.self) {
            try await Self.within(150) {
                try await holder.apply(
                    MigrationRun(["INSERT INTO marks VALUES (1)", Self.burn]), record: Self.record("burn", .expand),
                    due: Self.due("burn"))
            }
        }
        #expect(interrupted?.isTransient == false, "\(String(describing: interrupted))")
        #expect(interrupted?.description.contains("did not finish within 8s") == true)
        #expect(ContinuousClock.now - start < .seconds(45))
        await holder.close()
        #expect(try await db.query("SELECT count(*) FROM marks") == ["0"])
        #expect(try await db.history() == [])
    }

    // MARK: TLS

    /// Whether the open connection of application `tide` in `database` uses TLS.
    static func usesTLS(_ server: PostgresServer, _ database: String) throws -> String {
        try server.psql(
            database,
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'tide' "
                + "AND a.datname = current_database()"
        ).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("PostgreSQL: sslmode is honoured — disable, prefer, require, verify-ca and verify-full with sslrootcert")
    func sslModes() async throws {
        // Started off the cooperative pool: initdb takes seconds, and a blocked pool thread starves the timers
        // of every test running beside this one (two threads on two cores).
        let server = try await detached { try PostgresServer.startDedicated(tls: true) }
        defer { try? server.stop() }
        let name = try await detached { try server.makeDatabase() }
        let root = try #require(server.certificate)
        let base = "postgres://tide@127.0.0.1:\(server.port)/\(name)"
        let local = "postgres://tide@localhost:\(server.port)/\(name)"
        for (url, tls) in [
            (base + "?sslmode=disable", "f"), (base, "t"), (base + "?sslmode=require", "t"),
            (base + "?sslmode=verify-ca&sslrootcert=\(root)", "t"),
            (local + "?sslmode=verify-full&sslrootcert=\(root)", "t"),
        ] {
            let database = try await Self.within(90) { try await Self.open(url) }
            #expect(try await detached { try Self.usesTLS(server, name) } == tls, "\(url)")
            await database.close()
        }
        // An authority the client does not trust (the system's, here), and a server without TLS when it is required.
        let untrusted = await #expect(throws: MigrationError.self) {
            try await Self.within(90) { try await Self.open(local + "?sslmode=verify-full") }
        }
        #expect(untrusted?.isTransient == false, "\(String(describing: untrusted))")
        let plain = try await detached { try PostgresServer.start() }
        let plainName = try await detached { try plain.makeDatabase() }
        let refused = await #expect(throws: MigrationError.self) {
            try await Self.within(90) { try await Self.open(plain.url(plainName) + "?sslmode=require") }
        }
        #expect(refused?.isTransient == false, "\(String(describing: refused))")
        let prefer = try await Self.within(90) { try await Self.open(plain.url(plainName)) }
        await prefer.close()
    }
}
