import Foundation
import Testing
import TideGit
import TideManifest
import TideTestSupport

/// The sql executor's connection fields (`timeout`, `sslmode`, passwords by reference only), the way migration
/// phases run (`transaction`, `maxRounds`) and the lint that knows the database is PostgreSQL.
@Suite("TideManifest: sql executor connections, how phases run, CREATE INDEX lint")
struct SQLExecutorManifestTests {
    static func executor(_ url: String, extra: String = "") -> String {
        """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: orders-db}
        spec:
          type: sql
          url: "\(url)"
        \(extra)
        """
    }

    static func migration(_ phases: String) -> String {
        """
        apiVersion: tide/v1
        kind: Migration
        metadata: {name: add-index}
        spec:
          executor: orders-db
        \(phases)

        """
    }

    func decode(_ text: String) -> ([ManifestDocument], [Diagnostic]) {
        ManifestDecoder.decode(file: "db.yaml", text: text)
    }

    @Test("timeout on a sql executor bounds its phases (default 5m); sslmode and sslrootcert are read from the URL")
    func connectionFields() throws {
        let (documents, diagnostics) = decode(
            Self.executor(
                "postgres://tide@db.internal:5432/orders?sslmode=verify-full&sslrootcert=/etc/ssl/db.pem",
                extra: "  timeout: 30s\n"))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        guard case .executor(let executor)? = documents.first else { throw FixtureError("no executor") }
        #expect(executor.timeout == 30)
        let url = try #require(executor.database?.url)
        #expect(
            url
                == .postgres(
                    user: "tide", host: "db.internal", port: 5432, database: "orders",
                    tls: DatabaseURL.PostgresTLS(mode: .verifyFull, rootCertificate: "/etc/ssl/db.pem")))
        #expect(
            url.description == "postgres://tide@db.internal:5432/orders?sslmode=verify-full&sslrootcert=/etc/ssl/db.pem"
        )

        let (plain, _) = decode(Self.executor("postgres://tide@db.internal/orders"))
        guard case .executor(let defaulted)? = plain.first else { throw FixtureError("no executor") }
        #expect(defaulted.timeout == 300)
        #expect(defaulted.database?.url == .postgres(user: "tide", host: "db.internal", port: 5432, database: "orders"))
    }

    @Test(
        "refused URLs name file:line:column and never print a password",
        arguments: [
            ("postgres://tide@db/orders?password=hunter2", "the URL holds a password"),
            ("postgres://tide@db/orders?sslmode=requir", "sslmode=requir is not one of disable, prefer, require"),
            ("postgres://tide@db/orders?connect_timeout=5", "'connect_timeout' is not a parameter tide reads"),
            ("postgres://tide@db/orders?sslrootcert=/ca.pem", "sslrootcert is used only with sslmode=verify-ca"),
            ("mysql://tide:hunter2@db/orders", "is not sqlite:PATH or postgres://"),
            ("postgres://:hunter2@db/orders?password=hunter2&sslmode=x", "the URL holds a password"),
        ])
    func refusedURLs(_ url: String, _ message: String) {
        let (_, diagnostics) = decode(Self.executor(url))
        let match = diagnostics.first { $0.message.contains(message) }
        #expect(match != nil, "expected '\(message)' in \(diagnostics)")
        #expect(match?.location == SourceLocation(file: "db.yaml", line: 6, column: 8))
        #expect(!diagnostics.description.contains("hunter2"), "\(diagnostics)")
    }

    @Test("redacted: passwords in user info and in the query become ***")
    func redaction() {
        #expect(DatabaseURL.redacted("postgres://tide:hunter2@db:5432/orders") == "postgres://tide:***@db:5432/orders")
        #expect(
            DatabaseURL.redacted("postgres://tide@db/orders?sslmode=require&password=hunter2&x=1")
                == "postgres://tide@db/orders?sslmode=require&password=***&x=1")
        #expect(DatabaseURL.redacted("sqlite:/var/lib/app.sqlite") == "sqlite:/var/lib/app.sqlite")
    }

    @Test("password: {env: NAME} makes NAME one of Tide's secrets")
    func passwordVariableWithheld() {
        let name = "ORDERS_DB_PASSWORD_\(UUID().uuidString.prefix(8))"
        #expect(!SecretVariables.withheld.contains(name))
        let (_, diagnostics) = decode(Self.executor("postgres://tide@db/orders", extra: "  password: {env: \(name)}\n"))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(SecretVariables.withheld.contains(name))
    }

    @Test("transaction: false and maxRounds decode; transaction and maxRounds are not part of the checksum")
    func phaseFields() throws {
        let (documents, diagnostics) = decode(
            Self.migration(
                """
                  expand: {up: ["CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email)"], down: ["DROP INDEX CONCURRENTLY IF EXISTS users_email"], transaction: false}
                  backfill: {up: ["UPDATE users SET n = 1 WHERE id IN (SELECT id FROM users WHERE n = 0 LIMIT {{batch}})"], batchSize: 100, maxRounds: 50}
                """))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        guard case .migration(let migration)? = documents.first else { throw FixtureError("no migration") }
        let expand = try #require(migration.expand)
        let backfill = try #require(migration.backfill)
        #expect(!expand.transaction)
        #expect(backfill.transaction)
        #expect(backfill.maxRounds == 50)
        #expect(expand.maxRounds == MigrationManifest.Phase.defaultMaxRounds)
        var other = expand
        other.transaction = true
        #expect(other.checksum == expand.checksum)
    }

    @Test(
        "bad phase fields name the place",
        arguments: [
            (
                #"  backfill: {up: ["UPDATE users SET n = 1"], maxRounds: 5}"#,
                "spec.backfill.maxRounds: only a batched backfill (batchSize) runs in rounds"
            ),
            (
                #"  backfill: {up: ["UPDATE users SET n = 1 WHERE id IN (SELECT id FROM users LIMIT {{batch}})"], batchSize: 10, maxRounds: 0}"#,
                "spec.backfill.maxRounds: expected a whole number above 0"
            ),
            (
                #"  backfill: {up: ["UPDATE users SET n = 1 WHERE id IN (SELECT id FROM users LIMIT {{batch}})"], batchSize: 10, transaction: false}"#,
                "spec.backfill.transaction: a batched backfill commits each round in a transaction of its own"
            ),
            (
                #"  expand: {up: ["CREATE INDEX CONCURRENTLY i ON users (email)"]}"#,
                "spec.expand.up[0]: the database refuses this statement inside a transaction; set "
                    + "spec.expand.transaction: false"
            ),
            (
                #"  expand: {up: ["CREATE INDEX i ON users (email)"], down: ["DROP INDEX CONCURRENTLY i"]}"#,
                "spec.expand.down[0]: the database refuses this statement inside a transaction"
            ),
            (#"  contract: {up: ["DROP TABLE x"], transaction: maybe}"#, "spec.contract.transaction"),
        ])
    func badPhases(_ phases: String, _ message: String) {
        let (_, diagnostics) = decode(Self.migration(phases))
        let match = diagnostics.first { $0.message.contains(message) }
        #expect(match != nil, "expected '\(message)' in \(diagnostics)")
        #expect(match?.location.file == "db.yaml")
        #expect(match?.location.line == 6)
    }

    func load(_ files: [String: String]) throws -> DesiredState {
        let fixture = try GitFixture()
        let id = try fixture.commit("state", files: files)
        let source = GitCommitSource(repository: try Repository.open(at: fixture.repoPath), commit: id, root: "")
        return try ManifestLoader().load(from: source)
    }

    @Test("lint: CREATE INDEX without CONCURRENTLY on a PostgreSQL database, not on SQLite, not on a new table")
    func createIndexLint() throws {
        let phases = """
              expand: {up: ["CREATE TABLE audit (id INT)", "CREATE INDEX audit_id ON audit (id)", "CREATE UNIQUE INDEX IF NOT EXISTS users_email ON ONLY users (email)"]}
              contract: {up: ["CREATE INDEX CONCURRENTLY IF NOT EXISTS users_name ON users (name)"], transaction: false}
            """
        let base = ["base.yaml": validExecutor, "m.yaml": Self.migration(phases)]
        let postgres = try load(
            base.merging([
                "db.yaml": Self.executor(
                    "sqlite:/tmp/x.sqlite", extra: "  environments: {prod: {url: \"postgres://tide@db/orders\"}}\n")
            ]) { $1 })
        let warnings = postgres.warnings.map(\.description)
        #expect(warnings.count == 1, "\(warnings)")
        #expect(
            warnings.first?.hasPrefix(
                "m.yaml:6:11: Migration 'add-index': spec.expand.up[2]: CREATE INDEX on users blocks writes to it "
                    + "while the index builds on PostgreSQL; use CREATE INDEX CONCURRENTLY IF NOT EXISTS") == true,
            "\(warnings)")

        let sqlite = try load(base.merging(["db.yaml": Self.executor("sqlite:/tmp/x.sqlite")]) { $1 })
        #expect(sqlite.warnings.isEmpty, "\(sqlite.warnings)")
    }
}
