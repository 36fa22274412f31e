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
        /// false: the statements run one by one outside a transaction (PostgreSQL `CREATE INDEX CONCURRENTLY`),
        /// and the history row is written after the last one. A run cut short leaves the statements before the
        /// failing one applied, so they must be idempotent (`IF NOT EXISTS`). For expand it holds for `down` too.
        public var transaction = true
        /// A batched backfill stops with an error after this many rounds that still changed rows.
        public var maxRounds = Self.defaultMaxRounds
        public var location: SourceLocation

        public static let defaultMaxRounds = 100_000

        public init(up: [String], location: SourceLocation) {
            self.up = up
            self.location = location
        }

        /// The checksum recorded when the phase is applied: the git blob id of its statements (and batch size),
        /// so an applied phase whose statements were edited afterwards is caught. How they run (`transaction`,
        /// `maxRounds`) is not part of it: changing that does not change what the phase did.
        public var checksum: String { Self.checksum(of: up, batchSize: batchSize) }

        /// The checksum of `statements` (with a batch size: a backfill's).
        public static func checksum(of statements: [String], batchSize: Int?) -> String {
            var text = statements.joined(separator: "\n;\n")
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
        for phaseName in PhaseName.allCases {
            guard let phase = phase(phaseName), !phase.transaction || phaseName == .backfill else { continue }
            for (index, statement) in phase.up.enumerated() {
                let command = Self.words(statement).prefix(2).map { $0.uppercased() }
                guard command == ["ALTER", "TABLE"] || command == ["LOCK", "TABLE"] || command == ["LOCK"] else {
                    continue
                }
                let why =
                    phaseName == .backfill
                    ? "a backfill repeats its statements round after round, taking the table's lock each time"
                    : "outside a transaction, a failure after it leaves it applied and the phase half done"
                found.append(
                    Diagnostic(
                        phase.location,
                        "Migration '\(name)': spec.\(phaseName.rawValue).up[\(index)]: \(command.joined(separator: " ")) "
                            + "in a \(phaseName == .backfill ? "backfill" : "phase with transaction: false"): \(why); "
                            + "move schema changes to a transactional expand or contract"))
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

    /// The lint that depends on where the migration runs: on PostgreSQL, a `CREATE INDEX` without `CONCURRENTLY`
    /// on a table the migration did not create blocks the application's writes to it while the index builds.
    public func warnings(executor: ExecutorManifest?) -> [Diagnostic] {
        guard let database = executor?.database,
            ([database.url].compactMap { $0 } + Array(database.environmentURLs.values)).contains(where: \.isPostgres)
        else { return warnings }
        var found = warnings
        var created: Set<String> = []
        for phaseName in PhaseName.allCases {
            guard let phase = phase(phaseName) else { continue }
            for (index, statement) in phase.up.enumerated() {
                if let table = Self.createdTable(statement) { created.insert(table) }
                guard let table = Self.lockingIndex(statement), !created.contains(table) else { continue }
                found.append(
                    Diagnostic(
                        phase.location,
                        "Migration '\(name)': spec.\(phaseName.rawValue).up[\(index)]: CREATE INDEX on "
                            + "\(table.lowercased()) blocks writes to it while the index builds on PostgreSQL; use CREATE INDEX "
                            + "CONCURRENTLY IF NOT EXISTS in a phase with transaction: false"))
            }
        }
        return found
    }

    /// The words of a statement as written; quoted identifiers lose their quotes.
    static func words(_ statement: String) -> [String] {
        statement.split { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") }.map(String.init)
    }

    /// `CREATE [UNIQUE] INDEX` without `CONCURRENTLY`: the table it locks (upper-cased, for comparing).
    static func lockingIndex(_ statement: String) -> String? {
        let words = words(statement).map { $0.uppercased() }
        guard words.first == "CREATE" else { return nil }
        var rest = words.dropFirst()
        if rest.first == "UNIQUE" { rest = rest.dropFirst() }
        guard rest.first == "INDEX", rest.dropFirst().first != "CONCURRENTLY",
            let on = rest.firstIndex(of: "ON")
        else { return nil }
        var table = words.index(after: on)
        if table < words.count && words[table] == "ONLY" { table += 1 }
        return table < words.count ? words[table] : nil
    }

    /// `CREATE TABLE [IF NOT EXISTS] name`: the table (upper-cased).
    static func createdTable(_ statement: String) -> String? {
        let words = words(statement).map { $0.uppercased() }
        guard words.count > 2, words[0] == "CREATE" else { return nil }
        var index = words[1...].firstIndex(of: "TABLE").map { $0 + 1 } ?? words.count
        if words[index...].starts(with: ["IF", "NOT", "EXISTS"]) { index += 3 }
        return index < words.count ? words[index] : nil
    }

    /// `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX … CONCURRENTLY`, `VACUUM`: statements a
    /// database refuses inside a transaction.
    /// The statement's top-level command (`UPDATE` for `WITH x AS (…) UPDATE …`, `SELECT` for
    /// `WITH x AS (UPDATE …) SELECT …`), upper-cased; nil when it cannot be told. Comments, strings and
    /// parenthesised groups are skipped.
    public static func topLevelCommand(_ statement: String) -> String? {
        var words: [String] = []
        var depth = 0
        var index = statement.startIndex
        var word = ""
        func flush() {
            if !word.isEmpty && depth == 0 { words.append(word.uppercased()) }
            word = ""
        }
        while index < statement.endIndex {
            let c = statement[index]
            let next = statement.index(after: index)
            if c == "-", next < statement.endIndex, statement[next] == "-" {
                flush()
                index = statement[index...].firstIndex(of: "\n") ?? statement.endIndex
                continue
            }
            if c == "/", next < statement.endIndex, statement[next] == "*" {
                flush()
                index = statement[next...].range(of: "*/")?.upperBound ?? statement.endIndex
                continue
            }
            if c == "'" || c == "\"" {
                flush()
                index = statement[next...].firstIndex(of: c).map { statement.index(after: $0) } ?? statement.endIndex
                continue
            }
            if c == "(" {
                flush()
                depth += 1
            } else if c == ")" {
                flush()
                depth = max(0, depth - 1)
            } else if c.isLetter || c == "_" {
                word.append(c)
            } else {
                flush()
            }
            index = next
        }
        flush()
        // WITH [RECURSIVE] name [AS] [NOT] [MATERIALIZED] (…), … COMMAND: the command is the first word after the
        // CTEs, which at depth 0 are only names and these keywords.
        guard let first = words.first else { return nil }
        guard first == "WITH" else { return first }
        let cteWords: Set<String> = ["WITH", "RECURSIVE", "AS", "NOT", "MATERIALIZED"]
        var sawAs = false
        for word in words.dropFirst() {
            if cteWords.contains(word) {
                if word == "AS" { sawAs = true }
                continue
            }
            if sawAs && ["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE"].contains(word) {
                return word
            }
            sawAs = false  // the next CTE's name
        }
        return nil
    }

    public static func needsNoTransaction(_ statement: String) -> Bool {
        let words = words(statement).map { $0.uppercased() }
        guard let first = words.first else { return false }
        if first == "VACUUM" { return true }
        if first == "REINDEX" { return words.contains("CONCURRENTLY") }
        guard first == "CREATE" || first == "DROP" else { return false }
        var rest = words.dropFirst()
        if rest.first == "UNIQUE" { rest = rest.dropFirst() }
        return rest.first == "INDEX" && rest.dropFirst().first == "CONCURRENTLY"
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
    /// `postgres://user@host:port/database[?sslmode=…&sslrootcert=PATH]` (or `postgresql://`); the password
    /// never comes from the URL.
    case postgres(user: String, host: String, port: Int, database: String, tls: PostgresTLS = PostgresTLS())

    /// `sslmode` and `sslrootcert`, as libpq reads them.
    public struct PostgresTLS: Sendable, Hashable {
        public enum Mode: String, Sendable, Hashable, CaseIterable {
            /// Plain TCP.
            case disable
            /// TLS when the server offers it, unverified; plain TCP otherwise (libpq's default).
            case prefer
            /// TLS or no connection; the certificate is not verified.
            case require
            /// TLS with a certificate signed by a trusted authority (`sslrootcert`, else the system's).
            case verifyCA = "verify-ca"
            /// verify-ca, and the certificate names the host.
            case verifyFull = "verify-full"
        }

        public var mode: Mode
        /// The authorities' certificates (PEM) that verify-ca and verify-full trust; relative to the working
        /// directory.
        public var rootCertificate: String?

        public init(mode: Mode = .prefer, rootCertificate: String? = nil) {
            self.mode = mode
            self.rootCertificate = rootCertificate
        }
    }

    public var isPostgres: Bool {
        if case .postgres = self { return true }
        return false
    }

    /// Never holds a password: the URL was refused if it had one.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let user, let host, let port, let database, let tls):
            var query: [String] = []
            if tls.mode != .prefer { query.append("sslmode=\(tls.mode.rawValue)") }
            if let root = tls.rootCertificate { query.append("sslrootcert=\(root)") }
            return "postgres://\(user)@\(host):\(port)/\(database)"
                + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
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
            if path.hasPrefix("//") {
                path.removeFirst(2)
                // sqlite://user:password@host/… : a file has no user, password or host to give.
                if let at = path.firstIndex(of: "@"), !path[..<at].contains("/") {
                    if path[..<at].contains(":") { throw .passwordInURL }
                    throw .malformed("'\(Self.redacted(text))': sqlite:PATH names a file, not a user or a host")
                }
            }
            if path.contains("?") {
                if path.lowercased().contains("password") { throw .passwordInURL }
                throw .malformed("'\(Self.redacted(text))': sqlite:PATH takes no parameters")
            }
            guard !path.isEmpty else { throw .malformed("sqlite: needs a file path (sqlite:/var/lib/app.sqlite)") }
            self = .sqlite(path: path)
            return
        }
        let shown = Self.redacted(text)
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"),
            let components = URLComponents(string: text)
        else { throw .unsupported(shown) }
        if components.password != nil { throw .passwordInURL }
        if components.fragment != nil {
            throw .malformed("'\(shown)': a URL fragment (#…) is not read; remove it")
        }
        var tls = PostgresTLS()
        for item in components.queryItems ?? [] {
            switch item.name.lowercased().trimmingCharacters(in: .whitespaces) {
            case "password", "passwd", "pass", "pwd": throw .passwordInURL
            case "sslmode":
                guard let mode = item.value.flatMap(PostgresTLS.Mode.init(rawValue:)) else {
                    throw .malformed(
                        "'\(shown)': sslmode=\(item.value ?? "") is not one of "
                            + PostgresTLS.Mode.allCases.map(\.rawValue).joined(separator: ", "))
                }
                tls.mode = mode
            case "sslrootcert":
                guard let path = item.value, !path.isEmpty else {
                    throw .malformed("'\(shown)': sslrootcert needs a file (sslrootcert=/etc/ssl/db-ca.pem)")
                }
                tls.rootCertificate = path
            default:
                throw .malformed(
                    "'\(shown)': '\(item.name)' is not a parameter tide reads; it reads sslmode and sslrootcert")
            }
        }
        if tls.rootCertificate != nil && ![.verifyCA, .verifyFull].contains(tls.mode) {
            throw .malformed("'\(shown)': sslrootcert is used only with sslmode=verify-ca or verify-full")
        }
        guard let user = components.user, !user.isEmpty else {
            throw .malformed("'\(shown)': name the user (postgres://user@host:5432/database)")
        }
        guard let host = components.host, !host.isEmpty else { throw .malformed("'\(shown)': name the host") }
        if let port = components.port, !(1...65535).contains(port) {
            throw .malformed("'\(shown)': port \(port) is not a TCP port (1–65535)")
        }
        if (user + host).unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw .malformed("'\(Diagnostic.printable(shown))': control characters in the user or host")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw .malformed("'\(shown)': name the database (postgres://user@host:5432/database)")
        }
        self = .postgres(user: user, host: host, port: components.port ?? 5432, database: database, tls: tls)
    }

    /// `text` with anything that may be a credential replaced by `***` (`URLRedaction`, the one redaction of
    /// every URL Tide shows).
    public static func redacted(_ text: String) -> String {
        URLRedaction.redacted(text)
    }

    /// Query parameters that name a secret (`URLRedaction.secretParameter`).
    nonisolated(unsafe) static let secretParameter = URLRedaction.secretParameter
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
