import Foundation
import TideGit

/// `kind: Migration` — an expand-contract schema change, run against each environment's database by an
/// Executor of type `sql`.
public struct MigrationManifest: Sendable, Hashable {
    public struct Phase: Sendable, Hashable {
        /// Statements, run in order, in one transaction.
        public var up: [String]
        /// expand: what undoes it, run when the services that needed it are rolled back before contract.
        public var down: [String] = []
        /// backfill: repeat `up` in transactions of this many rows (`{{batch}}` in a statement) until a round
        /// changes nothing.
        public var batchSize: Int?
        /// contract: how long every service that needs the migration must have run its new version first.
        public var after: Double = 0
        public var location: SourceLocation

        public init(up: [String], location: SourceLocation) {
            self.up = up
            self.location = location
        }

        /// The checksum recorded when the phase is applied: the git blob id of its statements (and batch size),
        /// so an applied phase whose statements were edited afterwards is caught.
        public var checksum: String {
            var text = up.joined(separator: "\n;\n")
            if let batchSize { text += "\n-- batch \(batchSize)" }
            return ObjectID.blobHash(of: Array(text.utf8)).hex
        }
    }

    public enum PhaseName: String, Sendable, Hashable, Codable, CaseIterable {
        case expand, backfill, contract
    }

    public var name: String
    public var location: SourceLocation
    public var executor: String
    public var executorLocation: SourceLocation
    public var expand: Phase?
    public var backfill: Phase?
    public var contract: Phase?

    public init(name: String, location: SourceLocation, executor: String, executorLocation: SourceLocation) {
        self.name = name
        self.location = location
        self.executor = executor
        self.executorLocation = executorLocation
    }

    public func phase(_ name: PhaseName) -> Phase? {
        switch name {
        case .expand: expand
        case .backfill: backfill
        case .contract: contract
        }
    }

    /// Lint: what `tide validate` and `tide plan` warn about. Destructive statements belong in contract, not in
    /// expand (expand must leave the schema usable by the version still running); a contract needs the expand
    /// that makes it safe.
    public var warnings: [Diagnostic] {
        var found: [Diagnostic] = []
        if let expand {
            for (index, statement) in expand.up.enumerated() {
                if let what = Self.destructive(statement) {
                    found.append(
                        Diagnostic(
                            expand.location,
                            "Migration '\(name)': spec.expand.up[\(index)]: \(what) in expand breaks the version "
                                + "still running; move it to contract"))
                }
            }
        }
        if let contract, expand == nil {
            found.append(
                Diagnostic(
                    contract.location,
                    "Migration '\(name)': spec.contract without an expand: nothing makes it safe for the version "
                        + "still running (add the expand that prepares the new schema)"))
        }
        return found
    }

    /// `DROP TABLE`, `DROP COLUMN` (also `ALTER TABLE … DROP name`), `RENAME`: what a running version can trip on.
    static func destructive(_ statement: String) -> String? {
        let words = statement.uppercased().split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init)
        for (index, word) in words.enumerated() {
            let next = index + 1 < words.count ? words[index + 1] : ""
            if word == "DROP" && next == "TABLE" { return "DROP TABLE" }
            if word == "DROP" && next == "COLUMN" { return "DROP COLUMN" }
            if word == "DROP" && index >= 3 && words[index - 3] == "ALTER" && words[index - 2] == "TABLE"
                && !["CONSTRAINT", "DEFAULT", "NOT", "INDEX"].contains(next)
            {
                return "DROP COLUMN"
            }
            if word == "RENAME" { return "RENAME" }
        }
        return nil
    }
}

/// Where a `sql` executor's database is.
public enum DatabaseURL: Sendable, Hashable, CustomStringConvertible {
    /// `sqlite:PATH` (relative paths are resolved against the working directory).
    case sqlite(path: String)
    /// `postgres://user@host:port/database` (or `postgresql://`); the password never comes from the URL.
    case postgres(user: String, host: String, port: Int, database: String)

    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let user, let host, let port, let database): "postgres://\(user)@\(host):\(port)/\(database)"
        }
    }

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case unsupported(String)
        case passwordInURL
        case malformed(String)

        public var description: String {
            switch self {
            case .unsupported(let text): "'\(text)' is not sqlite:PATH or postgres://user@host:port/database"
            case .passwordInURL:
                "the URL holds a password; give it with password: {env: NAME} or {file: PATH}, never in the manifest"
            case .malformed(let why): why
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty else { throw .malformed("sqlite: needs a file path (sqlite:/var/lib/app.sqlite)") }
            self = .sqlite(path: path)
            return
        }
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"),
            let components = URLComponents(string: text)
        else { throw .unsupported(text) }
        if components.password != nil { throw .passwordInURL }
        guard let user = components.user, !user.isEmpty else {
            throw .malformed("'\(text)': name the user (postgres://user@host:5432/database)")
        }
        guard let host = components.host, !host.isEmpty else { throw .malformed("'\(text)': name the host") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw .malformed("'\(text)': name the database (postgres://user@host:5432/database)")
        }
        self = .postgres(user: user, host: host, port: components.port ?? 5432, database: database)
    }
}

/// Where a database password comes from: never the manifest itself.
public enum PasswordSource: Sendable, Hashable {
    case environment(String)
    case file(String)
}

/// A `sql` executor's databases: one per environment.
public struct DatabaseSpec: Sendable, Hashable {
    public var url: DatabaseURL?
    public var environmentURLs: [String: DatabaseURL] = [:]
    public var password: PasswordSource?

    public init(url: DatabaseURL?) {
        self.url = url
    }

    /// The database of `environment`: its own URL, else the executor's `url`.
    public func url(for environment: String) -> DatabaseURL? {
        environmentURLs[environment] ?? url
    }
}
