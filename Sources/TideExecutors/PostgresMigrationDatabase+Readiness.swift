import Foundation
internal import Logging
internal import PostgresNIO
import Synchronization

extension PostgresMigrationDatabase {
    /// Connects, asks `SELECT 1` and disconnects: nothing is created or written. `timeout` bounds all of it; a
    /// server that does not answer in time has its connection closed.
    static func probe(
        host: String, port: Int, user: String, password: String?, database: String,
        tls: PostgresConnection.Configuration.TLS, timeout: Duration
    ) async throws {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .milliseconds(Int64(timeout / .milliseconds(1)))
        let logger = Logger(label: "tide.readiness")
        let open = OpenConnection()
        try await withDeadline(
            .now + timeout,
            expire: {
                if let connection = open.connection.withLock({ $0 }) {
                    let _: EventLoopFuture<Void> = connection.close()
                }
            },
            late: { MigrationError("no answer within \(MigrationLimits.format(timeout))", kind: .transient) }
        ) { [configuration] in
            let connection: PostgresConnection
            do {
                connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
            } catch {
                throw MigrationError("cannot connect: \(describe(error))")
            }
            open.connection.withLock { $0 = connection }
            do {
                _ = try await connection.query(PostgresQuery(unsafeSQL: "SELECT 1"), logger: logger).get()
            } catch {
                try? await connection.close()
                throw MigrationError(describe(error))
            }
            try? await connection.close()
        }
    }
}

/// The connection a probe made, for closing it when the probe runs out of time.
private final class OpenConnection: Sendable {
    let connection = Mutex<PostgresConnection?>(nil)
}
