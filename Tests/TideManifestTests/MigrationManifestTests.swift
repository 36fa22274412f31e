import Foundation
import Testing
import TideGit
import TideManifest
import TideTestSupport

@Suite("TideManifest: sql executors, migrations and their lint")
struct MigrationManifestTests {
    static let database = """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: orders-db}
        spec:
          type: sql
          url: "sqlite:/var/lib/orders/staging.sqlite"
          environments: {prod: {url: "postgres://tide@db.internal:5432/orders"}}
          password: {env: ORDERS_DB_PASSWORD}

        """

    static func migration(
        expand: String =
            #"{up: ["ALTER TABLE users ADD COLUMN email TEXT"], down: ["ALTER TABLE users DROP COLUMN email"]}"#,
        contract: String = #"{up: ["ALTER TABLE users DROP COLUMN mail"], after: 1h}"#
    ) -> String {
        """
        apiVersion: tide/v1
        kind: Migration
        metadata: {name: add-email}
        spec:
          executor: orders-db
          expand: \(expand)
          backfill: {up: ["UPDATE users SET email = mail WHERE email IS NULL"]}
          contract: \(contract)

        """
    }

    static let checkout = service("checkout", envs: "{prod: {}, staging: {}}") + "  migrations: [add-email]\n"

    func load(_ files: [String: String]) throws -> (DesiredState?, [Diagnostic]) {
        let fixture = try GitFixture()
        let id = try fixture.commit("state", files: files)
        let source = GitCommitSource(repository: try Repository.open(at: fixture.repoPath), commit: id, root: "")
        do {
            return (try ManifestLoader().load(from: source), [])
        } catch let error as ManifestError {
            return (nil, error.diagnostics)
        }
    }

    func base(_ extra: [String: String]) -> [String: String] {
        ["base.yaml": validExecutor + "---\n" + environment("staging"), "db.yaml": Self.database].merging(extra) { $1 }
    }

    @Test("the design document's example decodes: per-environment URLs, password by reference, phases")
    func decodes() throws {
        let (state, diagnostics) = try load(base(["m.yaml": Self.migration(), "c.yaml": Self.checkout]))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let desired = try #require(state)
        let database = try #require(desired.executors["orders-db"]?.database)
        #expect(database.url(for: "staging") == .sqlite(path: "/var/lib/orders/staging.sqlite"))
        #expect(
            database.url(for: "prod") == .postgres(user: "tide", host: "db.internal", port: 5432, database: "orders"))
        #expect(database.password == .environment("ORDERS_DB_PASSWORD"))
        let migration = try #require(desired.migrations["add-email"])
        #expect(migration.expand?.down == ["ALTER TABLE users DROP COLUMN email"])
        #expect(migration.contract?.after == 3600)
        #expect(desired.target(TargetID(service: "checkout", environment: "prod"))?.migrations == ["add-email"])
        #expect(desired.warnings.isEmpty, "\(desired.warnings)")
    }

    @Test("editing a phase changes the target's desired state (a failed migration that is fixed is retried)")
    func digestFollowsStatements() throws {
        let (before, _) = try load(base(["m.yaml": Self.migration(), "c.yaml": Self.checkout]))
        let (after, _) = try load(
            base([
                "m.yaml": Self.migration(contract: #"{up: ["ALTER TABLE users DROP COLUMN mail2"]}"#),
                "c.yaml": Self.checkout,
            ]))
        let id = TargetID(service: "checkout", environment: "prod")
        #expect(try #require(before?.target(id)).configDigest != (try #require(after?.target(id)).configDigest))
    }

    @Test("each environment's version needs its own migrations: spec.environments.ENV.migrations")
    func perEnvironmentMigrations() throws {
        let (state, diagnostics) = try load(
            base([
                "m.yaml": Self.migration(),
                "c.yaml": service(
                    "checkout", version: "1.0",
                    envs: "{staging: {version: \"1.1\", migrations: [add-email]}, prod: {migrations: []}}"),
            ]))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let desired = try #require(state)
        #expect(desired.target(TargetID(service: "checkout", environment: "staging"))?.migrations == ["add-email"])
        #expect(desired.target(TargetID(service: "checkout", environment: "prod"))?.migrations == [])
    }

    @Test("a statement's top-level command, past comments, strings and data-modifying WITHs")
    func topLevelCommand() {
        #expect(MigrationManifest.topLevelCommand("UPDATE users SET a = 1") == "UPDATE")
        #expect(MigrationManifest.topLevelCommand("/* batch */ update users SET a = 1") == "UPDATE")
        #expect(MigrationManifest.topLevelCommand("-- note\nDELETE FROM t") == "DELETE")
        #expect(MigrationManifest.topLevelCommand("WITH x AS (SELECT 1) UPDATE t SET a = 1") == "UPDATE")
        #expect(
            MigrationManifest.topLevelCommand("WITH d AS (UPDATE t SET a = 1 RETURNING 1) SELECT count(*) FROM d")
                == "SELECT")
        #expect(
            MigrationManifest.topLevelCommand("WITH RECURSIVE c(x) AS (SELECT 1), e AS (DELETE FROM t) SELECT 1")
                == "SELECT")
        #expect(MigrationManifest.topLevelCommand("SELECT backfill_email(100)") == "SELECT")
        #expect(MigrationManifest.topLevelCommand("WITH 'update' AS (x) INSERT INTO t VALUES (1)") == "INSERT")
    }

    @Test("lint: destructive statements in expand, a contract without expand")
    func lint() throws {
        let (state, diagnostics) = try load(
            base([
                "m.yaml": Self.migration(
                    expand:
                        #"{up: ["ALTER TABLE users ADD COLUMN email TEXT", "ALTER TABLE users DROP mail", "ALTER TABLE users RENAME COLUMN a TO b", "DROP TABLE old"]}"#
                ),
                "n.yaml": """
                apiVersion: tide/v1
                kind: Migration
                metadata: {name: drop-legacy}
                spec:
                  executor: orders-db
                  contract: {up: ["DROP TABLE legacy"]}

                """,
            ]))
        #expect(diagnostics.isEmpty)
        let warnings = try #require(state).warnings.map(\.description)
        #expect(warnings.count == 4, "\(warnings)")
        #expect(warnings[0].hasPrefix("m.yaml:6:11: Migration 'add-email': spec.expand.up[1]: DROP COLUMN in expand"))
        #expect(warnings[1].contains("spec.expand.up[2]: RENAME in expand"))
        #expect(warnings[2].contains("spec.expand.up[3]: DROP TABLE in expand breaks the version still running"))
        #expect(warnings[3].hasPrefix("n.yaml:6:13: Migration 'drop-legacy': spec.contract without an expand"))
    }

    @Test(
        "bad migration manifests name the place",
        arguments: [
            (
                ["c.yaml": service("checkout") + "  migrations: [nope]\n"],
                "c.yaml:9:16: Service 'checkout': spec.migrations: migration 'nope' is not defined"
            ),
            (
                ["m.yaml": migration().replacingOccurrences(of: "executor: orders-db", with: "executor: local")],
                "m.yaml:5:13: Migration 'add-email': spec.executor: 'local' is a command executor"
            ),
            (
                ["m.yaml": migration().replacingOccurrences(of: "executor: orders-db", with: "executor: gone")],
                "m.yaml:5:13: Migration 'add-email': spec.executor: executor 'gone' is not defined"
            ),
            (
                ["m.yaml": "apiVersion: tide/v1\nkind: Migration\nmetadata: {name: m}\nspec: {executor: orders-db}\n"],
                "m.yaml:4:7: Migration 'm': spec: give at least one phase"
            ),
            (
                ["m.yaml": migration(expand: "{up: []}")],
                "m.yaml:6:16: Migration 'add-email': spec.expand.up: list at least one statement"
            ),
            (
                [
                    "m.yaml": migration().replacingOccurrences(
                        of: "backfill: {up:", with: "backfill: {batchSize: 100, up:")
                ], "Migration 'add-email': spec.backfill.batchSize: a batched backfill needs {{batch}}"
            ),
            (
                [
                    "db.yaml": database.replacingOccurrences(
                        of: "  url: \"sqlite:/var/lib/orders/staging.sqlite\"\n", with: ""), "m.yaml": migration(),
                    "c.yaml": checkout,
                ],
                "Service 'checkout': spec.migrations: migration 'add-email' runs in staging, but executor 'orders-db' has no url for it"
            ),
            (
                ["db.yaml": database.replacingOccurrences(of: "sqlite:/var", with: "mysql://var")],
                "spec.url: 'mysql://var/lib/orders/staging.sqlite' is not sqlite:PATH"
            ),
            (
                ["s.yaml": service("s").replacingOccurrences(of: "executor: local", with: "executor: orders-db")],
                "'orders-db' is a sql executor, which runs migrations"
            ),
            (
                // spec.migrations belong to spec.version: staging's 1.1 must say what it needs.
                [
                    "m.yaml": migration(),
                    "c.yaml": service("checkout", version: "1.0", envs: "{staging: {version: \"1.1\"}, prod: {}}")
                        + "  migrations: [add-email]\n",
                ],
                "c.yaml:7:37: Service 'checkout': spec.environments.staging.version: 1.1 is not spec.version (1.0), "
                    + "which needs migrations add-email; say which migrations 1.1 needs with "
                    + "spec.environments.staging.migrations ([] for none)"
            ),
            (
                [
                    "c.yaml": service(
                        "checkout", envs: "{staging: {version: \"1.1\", migrations: [nope]}, prod: {}}")
                ],
                "Service 'checkout': spec.environments.staging.migrations: migration 'nope' is not defined"
            ),
            (
                ["c.yaml": service("checkout") + "  databases: [local]\n"],
                "c.yaml:9:15: Service 'checkout': spec.databases: executor 'local' is a command executor; name sql "
                    + "executors here"
            ),
            (
                // Rows changed inside a SELECT are not counted: this backfill would stop after one round.
                [
                    "m.yaml": migration().replacingOccurrences(
                        of: #"backfill: {up: ["UPDATE users SET email = mail WHERE email IS NULL"]}"#,
                        with:
                            #"backfill: {batchSize: 100, up: ["WITH done AS (UPDATE users SET email = mail WHERE id IN (SELECT id FROM users WHERE email IS NULL LIMIT {{batch}}) RETURNING 1) SELECT count(*) FROM done"]}"#
                    )
                ],
                "spec.backfill.batchSize: a batched backfill ends when a round's INSERT, UPDATE, DELETE or MERGE "
                    + "statements change no row, and none of these statements is one at the top level"
            ),
            (
                // One version, two migration lists: what tide promote --to used to write.
                [
                    "m.yaml": migration(),
                    "c.yaml": service(
                        "checkout", version: "1.1", envs: "{staging: {}, prod: {version: \"1.1\", migrations: []}}")
                        + "  migrations: [add-email]\n",
                ],
                "Service 'checkout': spec.environments.prod: 1.1 needs migrations [] here "
                    + "(spec.environments.prod.migrations) but [add-email] by spec.migrations; one version needs the "
                    + "same migrations everywhere it runs"
            ),
            (
                ["c.yaml": service("checkout") + "  databases: [gone]\n"],
                "Service 'checkout': spec.databases: executor 'gone' is not defined"
            ),
        ])
    func bad(_ files: [String: String], _ message: String) throws {
        let (_, diagnostics) = try load(base(files))
        #expect(diagnostics.contains { $0.description.contains(message) }, "\(diagnostics)")
    }
}
