import Foundation
internal import PostgresNIO

/// Which PostgreSQL failures are transient, and how an error is told: SQLSTATE, message, detail, never a password.
extension PostgresMigrationDatabase {
    /// SQLSTATEs after which the same phase can pass later: connection exceptions (class 08), the server shutting
    /// down or starting (57P01–57P03), a cancelled statement (57014: the timeout), a lock not granted (55P03), a
    /// lost serialization race or deadlock (40001, 40P01), too many connections (53300), and a session ended for
    /// idling in a transaction (25P03).
    static func isTransient(sqlState: String) -> Bool {
        sqlState.hasPrefix("08")
            || ["57P01", "57P02", "57P03", "57014", "55P03", "40001", "40P01", "53300", "25P03"].contains(sqlState)
    }

    /// A `MigrationError` for any error of a PostgreSQL call, with its SQLSTATE and whether it is transient.
    static func classify(_ error: any Error) -> MigrationError {
        if let error = error as? MigrationError { return error }
        if error is CancellationError { return MigrationError("cancelled", kind: .transient) }
        let text = describe(error)
        guard let error = error as? PSQLError else {
            // NIO's own errors come from the network (a refused or reset connection, a connect timeout), except
            // TLS failures, which a retry does not fix.
            let type = String(reflecting: Swift.type(of: error))
            return MigrationError(text, kind: type.contains("NIOSSL") ? .permanent : .transient)
        }
        switch error.code {
        case .server:
            let state = error.serverInfo?[.sqlState]
            if state == "57014", text.contains("statement timeout") {
                // The phase's own time ran out (statement_timeout is what is left of the executor's timeout).
                var error = MigrationError.deadline("the phase", after: .zero)
                error.description =
                    "\(text): the phase ran out of its time (the sql executor's timeout); it is not "
                    + "tried again by itself: raise the executor's timeout, or make the phase cheaper (batchSize for "
                    + "a backfill), and tide retry"
                error.sqlState = state
                return error
            }
            return MigrationError(
                text, kind: state.map { isTransient(sqlState: $0) } == true ? .transient : .permanent, sqlState: state)
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .queryCancelled:
            let underlying = error.underlying.map { String(reflecting: type(of: $0)) } ?? ""
            return MigrationError(text, kind: underlying.contains("NIOSSL") ? .permanent : .transient)
        default:
            return MigrationError(text)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return message + (error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
            }
            return "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
        }
        if let error = error as? MigrationError { return error.description }
        return "\(error)"
    }
}
