import Foundation
internal import GRDB

/// A real database to run migrations against in tests — an SQLite file, or a database of its own in the test
/// process's PostgreSQL cluster — with what the tests need to look inside it.
public final class SQLDatabaseFixture: Sendable {
    public enum Backend: String, Sendable, CaseIterable, CustomStringConvertible {
        case sqlite, postgres
        public var description: String { rawValue }
    }

    public let backend: Backend
    /// What a `sql` executor's `url` says.
    public let url: String
    private let sqlitePath: String?
    private let postgres: (server: PostgresServer, database: String)?
    private let directory: TemporaryDirectory

    public init(_ backend: Backend) throws {
        self.backend = backend
        directory = try TemporaryDirectory("tide-sql")
        switch backend {
        case .sqlite:
            let path = directory.appending("app.sqlite")
            sqlitePath = path
            postgres = nil
            url = "sqlite:\(path)"
        case .postgres:
            let server = try PostgresServer.start()
            let database = try server.makeDatabase()
            sqlitePath = nil
            postgres = (server, database)
            url = server.url(database)
        }
    }

    /// A database already made in `server` (a dedicated cluster, or one a test set up itself).
    public init(server: PostgresServer, database: String) throws {
        backend = .postgres
        directory = try TemporaryDirectory("tide-sql")
        sqlitePath = nil
        postgres = (server, database)
        url = server.url(database)
    }

    /// Runs statements (separated by `;` at line ends are not split: one statement per element).
    public func execute(_ statements: String...) throws {
        for statement in statements {
            _ = try query(statement)
        }
    }

    /// The rows of a query, each row's columns joined with `|`.
    public func query(_ sql: String) throws -> [String] {
        try rows(sql, write: true)
    }

    /// The same for a query that only reads: on SQLite it does not wait for a writer (in WAL mode).
    public func read(_ sql: String) throws -> [String] {
        try rows(sql, write: false)
    }

    private func rows(_ sql: String, write: Bool) throws -> [String] {
        if let sqlitePath {
            // Waits for a writer (Tide's phase under test) as an application would, rather than failing at once.
            var configuration = Configuration()
            configuration.busyMode = .timeout(30)
            let queue = try DatabaseQueue(path: sqlitePath, configuration: configuration)
            defer { try? queue.close() }
            let fetch = { (db: Database) throws -> [String] in
                try Row.fetchAll(db, sql: sql).map { row in
                    row.databaseValues.map { value in
                        value.isNull ? "" : (String.fromDatabaseValue(value) ?? value.description)
                    }.joined(separator: "|")
                }
            }
            return write ? try queue.write(fetch) : try queue.read(fetch)
        }
        let (server, database) = postgres!
        let output = try server.psql(database, sql)
        guard output.status == 0 else { throw FixtureError("psql: \(output.standardError)") }
        return output.standardOutput.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// The table's column names, in order.
    public func columns(_ table: String) throws -> [String] {
        switch backend {
        case .sqlite: try read("SELECT name FROM pragma_table_info('\(table)') ORDER BY cid")
        case .postgres:
            try query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = '\(table)' "
                    + "ORDER BY ordinal_position")
        }
    }

    /// The history table: `name|phase` per row, oldest first.
    public func history() throws -> [String] {
        let exists =
            switch backend {
            case .sqlite: try read("SELECT name FROM sqlite_master WHERE name = 'tide_migrations'")
            case .postgres: try query("SELECT tablename FROM pg_tables WHERE tablename = 'tide_migrations'")
            }
        guard !exists.isEmpty else { return [] }
        return try read("SELECT name, phase FROM tide_migrations ORDER BY id")
    }
}
