import Foundation

/// `kind: Executor` — how actions reach a real platform. What every executor has (name, timeout, environment,
/// retries, circuit breaker) is here; what only one type has is in its `Kind` payload.
public struct ExecutorManifest: Sendable, Hashable {
    public enum ExecutorType: String, Sendable, Hashable, Codable, CaseIterable {
        case command
        /// A long-lived process spoken to in JSON lines over stdin/stdout (`command` is its argv).
        case plugin
        /// Publishes each target's stable and candidate versions and weights to a JSON file (`path`), for
        /// applications that split traffic by user themselves.
        case flags
        /// Routes traffic with a real nginx: one include file per target in `configDir`, checked with `test` and
        /// applied with `reload`.
        case nginx
        /// Runs Migrations against each environment's database (`url`, `environments.NAME.url`).
        case sql
        /// POSTs each action as JSON to `url` (signed with `secret`, idempotent by the action id).
        case http
    }

    /// nginx: where the include files go, and how to check and apply a configuration (argv, no shell).
    public struct Nginx: Sendable, Hashable {
        /// Relative paths are resolved against the working directory.
        public var configDir: String
        public var test = ["nginx", "-t"]
        public var reload = ["nginx", "-s", "reload"]

        public init(configDir: String) {
            self.configDir = configDir
        }
    }

    /// The executor's type with what only that type has.
    public enum Kind: Sendable, Hashable {
        /// argv, never run through a shell.
        case command([String])
        case plugin([String])
        /// The JSON file to publish.
        case flags(path: String)
        case nginx(Nginx)
        case sql(DatabaseSpec)
        case http(HTTPExecutorSpec)

        public var type: ExecutorType {
            switch self {
            case .command: .command
            case .plugin: .plugin
            case .flags: .flags
            case .nginx: .nginx
            case .sql: .sql
            case .http: .http
            }
        }
    }

    public var name: String
    public var location: SourceLocation
    public var kind: Kind
    /// Seconds an action may take before its process group is killed.
    public var timeout: Double
    /// Extra environment variables for the executor's process.
    public var environment: [String: String]
    /// Retries of transient failures (for services that do not set their own) and the circuit breaker.
    public var resilience = Resilience()
    /// Where the fields that name programs were written (`command`, `test`, `reload`), for diagnostics.
    public var fieldLocations: [String: SourceLocation] = [:]

    public init(
        name: String, location: SourceLocation, kind: Kind, timeout: Double = 300, environment: [String: String] = [:]
    ) {
        self.name = name
        self.location = location
        self.kind = kind
        self.timeout = timeout
        self.environment = environment
    }

    /// A command (or plugin) executor running `command`; the other types start with an empty payload, set through
    /// `path` and `database`.
    public init(
        name: String, location: SourceLocation, type: ExecutorType = .command, command: [String],
        timeout: Double = 300, environment: [String: String] = [:]
    ) {
        let kind: Kind =
            switch type {
            case .command: .command(command)
            case .plugin: .plugin(command)
            case .flags: .flags(path: "")
            case .nginx: .nginx(Nginx(configDir: ""))
            case .sql: .sql(DatabaseSpec(url: nil))
            case .http: .http(HTTPExecutorSpec(url: ""))
            }
        self.init(name: name, location: location, kind: kind, timeout: timeout, environment: environment)
    }

    public var type: ExecutorType { kind.type }

    /// The argv a command or plugin executor runs (empty for the others).
    public var command: [String] {
        switch kind {
        case .command(let argv), .plugin(let argv): argv
        default: []
        }
    }

    /// flags: the JSON file; nginx: the include directory; nil for the others (which ignore a value set).
    public var path: String? {
        get {
            switch kind {
            case .flags(let path): path
            case .nginx(let nginx): nginx.configDir
            default: nil
            }
        }
        set {
            guard let newValue else { return }
            switch kind {
            case .flags: kind = .flags(path: newValue)
            case .nginx(var nginx):
                nginx.configDir = newValue
                kind = .nginx(nginx)
            default: break
            }
        }
    }

    /// nginx: how to check a configuration (nginx's default for the others).
    public var nginxTest: [String] {
        if case .nginx(let nginx) = kind { nginx.test } else { Nginx(configDir: "").test }
    }

    /// nginx: how to apply a configuration.
    public var nginxReload: [String] {
        if case .nginx(let nginx) = kind { nginx.reload } else { Nginx(configDir: "").reload }
    }

    /// sql: the databases (nil for the others, which ignore a value set).
    public var database: DatabaseSpec? {
        get { if case .sql(let database) = kind { database } else { nil } }
        set {
            guard case .sql = kind, let newValue else { return }
            kind = .sql(newValue)
        }
    }
}
