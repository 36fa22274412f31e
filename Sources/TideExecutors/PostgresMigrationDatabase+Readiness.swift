import Foundation
internal import Logging
internal import PostgresNIO

extension PostgresMigrationDatabase {
    /// Connects, asks `SELECT 1` and disconnects: nothing is created or written. `timeout` bounds the TCP connect.
    static func probe(
        host: String, port: Int, user: String, password: String?, database: String, timeout: Duration
    ) async throws {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: .disable)
        configuration.options.connectTimeout = .milliseconds(Int64(timeout / .milliseconds(1)))
        let logger = Logger(label: "tide.readiness")
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        } catch {
            throw MigrationError("cannot connect: \(describe(error))")
        }
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: "SELECT 1"), logger: logger).get()
        } catch {
            try? await connection.close()
            throw MigrationError(describe(error))
        }
        try? await connection.close()
    }
}
