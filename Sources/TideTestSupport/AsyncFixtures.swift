public import Foundation
public import TideGit

// The fixtures' work runs children (git, psql, sqlite3) and waits for them. From async code — every test — these
// overloads wait on a thread of their own, never on one of the cooperative pool's: there are two on this machine,
// and a test blocking one for a child's lifetime stalls every other test's awaits (timers, database clients).

extension GitFixture {
    @discardableResult
    public func git(_ arguments: String...) async throws -> String {
        try await detached { try Self.git(arguments, in: self.workTree) }
    }

    public func remove(_ path: String) async throws {
        try await detached { try self.remove(path) }
    }

    @discardableResult
    public func commit(_ message: String, files: [String: String] = [:], date: Date? = nil) async throws -> ObjectID {
        try await detached { try self.commit(message, files: files, date: date) }
    }

    @discardableResult
    public func revert(_ revision: ObjectID, date: Date? = nil) async throws -> ObjectID {
        try await detached { try self.revert(revision, date: date) }
    }

    public func head() async throws -> ObjectID {
        try await detached { try self.head() }
    }
}

extension SQLDatabaseFixture {
    public func execute(_ statements: String...) async throws {
        try await detached { for statement in statements { _ = try self.query(statement) } }
    }

    public func query(_ sql: String) async throws -> [String] {
        try await detached { try self.query(sql) }
    }

    public func read(_ sql: String) async throws -> [String] {
        try await detached { try self.read(sql) }
    }

    public func columns(_ table: String) async throws -> [String] {
        try await detached { try self.columns(table) }
    }

    public func history() async throws -> [String] {
        try await detached { try self.history() }
    }
}

extension PostgresServer {
    public func psql(_ database: String, _ sql: String) async throws -> ProcessOutput {
        try await detached { try self.psql(database, sql) }
    }

    public func makeDatabase() async throws -> String {
        try await detached { try self.makeDatabase() }
    }
}
