import Foundation
import Testing
import TideTestSupport

/// `password: {file: PATH}` reads only inside directories the operator allowed with `--secret-dir`: a config repo
/// must not choose which files Tide reads and sends to a server the repo also chooses.
@Suite("End to end: password files only from --secret-dir")
struct SecretFileTests {
    @Test("no --secret-dir: refused; allowed directory: read; a symlink out of it, or a path outside: refused")
    func secretDirectories() async throws {
        let db = try SQLDatabaseFixture(.postgres)
        let repo = try ConfigRepo()
        let secrets = repo.scratch.appending("secrets")
        let elsewhere = repo.scratch.appending("elsewhere")
        for directory in [secrets, elsewhere] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        try "not-needed-with-trust-auth\n".write(toFile: secrets + "/orders", atomically: true, encoding: .utf8)
        try "outside\n".write(toFile: elsewhere + "/orders", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(
            atPath: secrets + "/escape", withDestinationPath: elsewhere + "/orders")
        func commit(passwordFile: String) throws {
            try repo.fixture.commit(
                "orders-db",
                files: [
                    "db.yaml": """
                    apiVersion: tide/v1
                    kind: Executor
                    metadata: {name: orders-db}
                    spec: {type: sql, url: "\(db.url)", password: {file: "\(passwordFile)"}}
                    ---
                    apiVersion: tide/v1
                    kind: Migration
                    metadata: {name: add-email}
                    spec:
                      executor: orders-db
                      expand: {up: ["CREATE TABLE IF NOT EXISTS seen (id INTEGER)"]}

                    """,
                    "api.yaml": ConfigRepo.service("api", "2.0") + "  migrations: [add-email]\n",
                ])
        }
        func readiness(_ extra: [String] = [], environment: [String: String] = [:]) async throws -> String {
            let output = try await TideBinary.runDetached(
                ["readiness", "api", "--env", "prod", "--repo", repo.fixture.repoPath, "--state", repo.state] + extra,
                in: repo.scratch.path, environment: environment)
            return output.combined
        }

        try commit(passwordFile: secrets + "/orders")
        let refused = try await readiness()
        #expect(refused.contains("is not inside a directory allowed with --secret-dir"), "\(refused)")
        #expect(refused.contains("none is allowed"), "\(refused)")
        let reconcile = try await repo.tide("reconcile")
        #expect(reconcile.status != 0 || reconcile.combined.contains("--secret-dir"), "\(reconcile.combined)")
        #expect(try await db.history().isEmpty, "nothing may run without the password")

        let allowed = try await readiness(["--secret-dir", secrets])
        #expect(!allowed.contains("--secret-dir"), "\(allowed)")
        #expect(allowed.contains("PASS"), "\(allowed)")
        let fromEnvironment = try await readiness(environment: ["TIDE_SECRET_DIRS": "/nonexistent:" + secrets])
        #expect(!fromEnvironment.contains("--secret-dir"), "\(fromEnvironment)")

        // A symlink inside the allowed directory that points out of it is judged by where it points.
        try commit(passwordFile: secrets + "/escape")
        let escaped = try await readiness(["--secret-dir", secrets])
        #expect(escaped.contains("is not inside a directory allowed"), "\(escaped)")
        #expect(!escaped.contains("outside"), "the file's content must never be shown: \(escaped)")

        let root = try await readiness(["--secret-dir", "/"])
        #expect(root.contains("--secret-dir: '/' would allow every file"), "\(root)")
    }
}
