import Foundation
public import TideManifest

extension ExecutorReadiness {
    /// sql: the database of `environment` can be opened. SQLite: the file (or, before the first migration, its
    /// directory) is writable. PostgreSQL: the password can be read and a connection made, within `timeout`.
    public func database(
        _ executor: ExecutorManifest, environment: String, timeout: Duration = .seconds(5)
    ) async -> ReadinessCheck {
        let owner = "\(executor.name) (sql, \(environment))"
        func check(_ pass: Bool, _ detail: String) -> ReadinessCheck {
            ReadinessCheck(name: "migration database", pass: pass, detail: "\(owner): \(detail)")
        }
        guard let database = executor.database, let url = database.url(for: environment) else {
            return check(false, "no database for \(environment): give spec.url or spec.environments.\(environment).url")
        }
        switch url {
        case .sqlite(let path):
            let file = resolve(path)
            let directory = (file as NSString).deletingLastPathComponent
            // SQLite writes its journal beside the file, so the directory must be writable in either case.
            if let why = Self.notWritableDirectory(directory) {
                let fix = why == "does not exist" ? "create it (SQLite does not)" : "make it writable"
                return check(false, "sqlite:\(file): its directory \(directory) \(why): \(fix)")
            }
            guard FileManager.default.fileExists(atPath: file) else {
                return check(true, "sqlite:\(file) does not exist yet; the first migration creates it")
            }
            guard access(file, R_OK | W_OK) == 0 else {
                return check(false, "sqlite:\(file) is not writable by this user (uid \(getuid())): make it writable")
            }
            return check(true, "sqlite:\(file) exists and is writable")
        case .postgres(let user, let host, let port, let name, let tlsSpec):
            let password: String?
            do {
                password = try database.password.map {
                    try MigrationDatabases.password(from: $0, workingDirectory: workingDirectory)
                }
            } catch {
                return check(false, "\(error): set it where tide runs")
            }
            do {
                let tls = try PostgresMigrationDatabase.tls(tlsSpec, workingDirectory: workingDirectory)
                try await PostgresMigrationDatabase.probe(
                    host: host, port: port, user: user, password: password, database: name, tls: tls,
                    timeout: timeout)
            } catch {
                return check(
                    false,
                    "\(url): \(error): check that the server runs and answers here, and the URL, user and password")
            }
            return check(true, "connected to \(url) as \(user) (SELECT 1 answered)")
        }
    }
}
