import Foundation
internal import Logging
internal import PostgresNIO

extension PostgresMigrationDatabase {
    /// Connects, asks `SELECT 1` and disconnects: nothing is created or written. `timeout` bounds the connection
    /// (TCP, TLS, login) and the answer each; a server that does not answer in time has its connection closed.
    static func probe(
        host: String, port: Int, user: String, password: String?, database: String,
        tls: PostgresConnection.Configuration.TLS, timeout: Duration
    ) async throws {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .milliseconds(Int64(timeout / .milliseconds(1)))
        let logger = Logger(label: "tide.readiness")
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        } catch {
            throw MigrationError("cannot connect: \(describe(error))")
        }
        do {
            _ = try await query(
                PostgresQuery(unsafeSQL: "SELECT 1"), on: connection, logger: logger, within: timeout,
                timedOut: { MigrationError("no answer within \(MigrationLimits.format(timeout))", kind: .transient) })
        } catch {
            try? await connection.close()
            throw MigrationError(describe(error))
        }
        try? await connection.close()
    }
}
