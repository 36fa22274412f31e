public import Foundation

/// The manifest kinds of format v1 that this version of Tide implements.
public enum ManifestKind: String, Sendable, Codable, CaseIterable {
    case executor = "Executor"
    case environment = "Environment"
    case service = "Service"
    case policy = "Policy"
    case analysis = "Analysis"
    case migration = "Migration"
}

/// `kind: Environment` — a place services run in, and the gates a version passes to run there.
public struct EnvironmentManifest: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, Codable, CaseIterable {
        case manual, auto
    }

    /// A recurring time when deployments may start: on `days`, from `start` to `end` (minutes after midnight)
    /// in `timeZone`. An `end` at or before `start` runs past midnight.
    public struct Window: Sendable, Hashable {
        /// 1 = Sunday … 7 = Saturday, as `Calendar` counts weekdays.
        public var weekdays: Set<Int>
        public var start: Int
        public var end: Int
        public var timeZone: TimeZone
        public var location: SourceLocation

        public init(weekdays: Set<Int>, start: Int, end: Int, timeZone: TimeZone, location: SourceLocation) {
            self.weekdays = weekdays
            self.start = start
            self.end = end
            self.timeZone = timeZone
            self.location = location
        }
    }

    /// A date range (both days included, in `timeZone`) when nothing new starts.
    public struct Freeze: Sendable, Hashable {
        public var from: Date
        /// The first instant after the freeze.
        public var until: Date
        public var reason: String?
        public var location: SourceLocation

        public init(from: Date, until: Date, reason: String?, location: SourceLocation) {
            self.from = from
            self.until = until
            self.reason = reason
            self.location = location
        }
    }

    public var name: String
    public var location: SourceLocation
    /// DORA counts deployments to production environments.
    public var production: Bool
    /// Environments a version must run in, healthy, before it may start here.
    public var requires: [String] = []
    public var requiresLocations: [SourceLocation] = []
    /// How long it must have run there (seconds).
    public var bake: Double = 0
    /// `manual`: a version starts here only once approved with `tide approve`.
    public var approval: Mode = .auto
    /// `auto`: once a version passed every gate upstream, Tide commits it as this environment's version.
    public var promotion: Mode = .manual
    /// When deployments may start (none: any time).
    public var windows: [Window] = []
    public var freezes: [Freeze] = []

    public init(name: String, location: SourceLocation, production: Bool = false) {
        self.name = name
        self.location = location
        self.production = production
    }
}

/// What happens when a rollout fails.
public struct RollbackSpec: Sendable, Hashable {
    public enum WriteBack: String, Sendable, Hashable, Codable, CaseIterable {
        /// Leave git as it is: the failed version stays desired, and is held until desired state changes.
        case none
        /// Commit `git revert` of the commits that asked for the failed version, so git matches what runs.
        case revert
    }

    /// Return to the stable version through the executor's `rollback` action as soon as a step fails.
    public var automatic: Bool
    public var writeBack: WriteBack

    public init(automatic: Bool = false, writeBack: WriteBack = .none) {
        self.automatic = automatic
        self.writeBack = writeBack
    }
}

/// `kind: Service` — one deployable thing and the environments it runs in.
public struct ServiceManifest: Sendable, Hashable {
    /// Per-environment overrides under `spec.environments`.
    public struct EnvironmentOverride: Sendable, Hashable {
        public var location: SourceLocation
        public var version: String?
        public var versionLocation: SourceLocation?
        public var config: JSONValue?
        /// The migrations this environment's version needs, when it says so itself (else `spec.migrations`).
        public var migrations: [String]?
        public var migrationLocations: [SourceLocation] = []

        public init(location: SourceLocation, version: String? = nil, config: JSONValue? = nil) {
            self.location = location
            self.version = version
            self.config = config
        }
    }

    public var name: String
    public var location: SourceLocation
    public var executor: String
    public var executorLocation: SourceLocation
    public var version: String?
    public var versionLocation: SourceLocation?
    public var config: JSONValue
    /// Environment name → override, and the order they were written in.
    public var environments: [String: EnvironmentOverride]
    public var environmentOrder: [String]
    public var dependsOn: [String]
    public var dependsOnLocations: [SourceLocation]
    public var strategy: StrategySpec
    /// Where `spec.strategy.type` was written (nil: the default, recreate).
    public var strategyLocation: SourceLocation?
    /// Where each value under `spec.config` and under each environment's `config` was written, so a problem an
    /// executor would find in a target's configuration is reported at its line (see `configField`).
    public var configLocations = ConfigLocations()
    /// The version is an expedited fix (HOTFIX): DORA counts the deployment it follows as failed.
    public var hotfix: Bool = false
    public var rollback = RollbackSpec()
    /// Retries of transient failures for this service's targets (nil: its executor's) and the progress deadline.
    public var resilience = Resilience()
    /// The Migrations `spec.version` needs (expanded before it rolls out). An environment that runs another
    /// version says what that one needs in `spec.environments.ENV.migrations`.
    public var migrations: [String] = []
    public var migrationLocations: [SourceLocation] = []
    /// sql executors whose databases this service uses besides its migrations' (`spec.databases`): a contract
    /// waits for every service using a database.
    public var databases: [String] = []
    public var databaseLocations: [SourceLocation] = []

    /// The migrations the service's version in `environment` needs.
    public func migrations(for environment: String) -> [String] {
        environments[environment]?.migrations ?? migrations
    }

    /// Places of configuration values, by key path (`["nginx", "listen"]`; `[]` is the `config` mapping itself).
    public struct ConfigLocations: Sendable, Hashable {
        public var base: [[String]: SourceLocation] = [:]
        public var environments: [String: [[String]: SourceLocation]] = [:]

        public init() {}
    }

    /// Where the value at `path` of `environment`'s configuration is set: `scope` is the mapping that sets it
    /// (`spec.environments.prod.config` when the environment's override does, else `spec.config`), `location` the
    /// value's place — or, for a value set nowhere, the place of the nearest mapping that would hold it.
    public func configField(_ path: [String], environment: String) -> (scope: String, location: SourceLocation) {
        let override = configLocations.environments[environment] ?? [:]
        for length in stride(from: path.count, through: 0, by: -1) {
            let prefix = Array(path.prefix(length))
            if let location = override[prefix] { return ("spec.environments.\(environment).config", location) }
            if let location = configLocations.base[prefix] { return ("spec.config", location) }
        }
        return ("spec.config", location)
    }

    /// Where the version desired in `environment` was written: the override's version, else `spec.version`.
    public func versionField(environment: String) -> (field: String, location: SourceLocation) {
        if let override = environments[environment], override.version != nil {
            return ("spec.environments.\(environment).version", override.versionLocation ?? override.location)
        }
        return ("spec.version", versionLocation ?? location)
    }

    /// One environment's configuration with the override merged in, and its digest.
    public struct ResolvedConfig: Sendable, Hashable {
        public var config: JSONValue
        public var digest: String
    }

    /// Each environment's resolved configuration. Computed once when the file is decoded, so a cached parse
    /// carries it and a pass over thousands of unchanged services does not merge and hash them again.
    public private(set) var resolvedConfigs: [String: ResolvedConfig] = [:]
    /// The digest of `config` itself, before any environment's override (see `DesiredTarget.baseConfigDigest`).
    public private(set) var baseConfigDigest: String?

    /// Computes `resolvedConfigs` from `config` and the environment overrides.
    public mutating func resolveConfigs() {
        baseConfigDigest = DesiredTarget.digest(of: config)
        resolvedConfigs = environments.mapValues { override in
            let config = override.config.map { self.config.merging($0) } ?? self.config
            return ResolvedConfig(config: config, digest: DesiredTarget.digest(of: config))
        }
    }

    /// The configuration of one environment (from `resolvedConfigs` when present).
    public func resolvedConfig(for environment: String) -> ResolvedConfig? {
        if let resolved = resolvedConfigs[environment] { return resolved }
        guard let override = environments[environment] else { return nil }
        let config = override.config.map { self.config.merging($0) } ?? self.config
        return ResolvedConfig(config: config, digest: DesiredTarget.digest(of: config))
    }

    public init(
        name: String, location: SourceLocation, executor: String, executorLocation: SourceLocation,
        version: String?, versionLocation: SourceLocation?, config: JSONValue,
        environments: [String: EnvironmentOverride], environmentOrder: [String], dependsOn: [String],
        dependsOnLocations: [SourceLocation], strategy: StrategySpec
    ) {
        self.name = name
        self.location = location
        self.executor = executor
        self.executorLocation = executorLocation
        self.version = version
        self.versionLocation = versionLocation
        self.config = config
        self.environments = environments
        self.environmentOrder = environmentOrder
        self.dependsOn = dependsOn
        self.dependsOnLocations = dependsOnLocations
        self.strategy = strategy
    }
}

/// `kind: Policy` — release rules by environment, change class and risk.
public struct PolicyManifest: Sendable, Hashable {
    public struct Rule: Sendable, Hashable {
        /// Empty: any.
        public var environments: [String] = []
        public var classes: [ChangeClass] = []
        public var risks: [RiskLevel] = []
        public var production: Bool?
        public var requireApproval = false
        /// The service's strategy must have at least one analysis step.
        public var requireAnalysis = false
        public var minimumStrategy: StrategyType?
        /// Deployments that match start only inside these windows.
        public var windows: [EnvironmentManifest.Window] = []
        public var location: SourceLocation

        public init(location: SourceLocation) {
            self.location = location
        }
    }

    public var name: String
    public var location: SourceLocation
    public var rules: [Rule]

    public init(name: String, location: SourceLocation, rules: [Rule]) {
        self.name = name
        self.location = location
        self.rules = rules
    }
}

/// `kind: Analysis` — measurements that decide whether a rollout goes on.
public struct AnalysisManifest: Sendable, Hashable {
    public enum Provider: Sendable, Hashable {
        /// Run argv (no shell); stdout is a number or JSON.
        case command([String], timeout: Double)
        /// An instant query over Prometheus' HTTP API (`GET address/api/v1/query`): a scalar is a number, a
        /// vector a list of numbers (`result[0]`), an empty vector no data.
        case prometheus(address: String, query: String, timeout: Double)
        /// `GET url`: the JSON answer (or the number) is `result`; a status other than 2xx is an error.
        case http(url: String, headers: [String: String], timeout: Double)
        /// Send `requests` GETs to `url`, `concurrency` at a time: `result` is `{errorRate, errors, requests,
        /// p50, p95, p99}` with latencies in milliseconds; a 5xx answer or no answer within `timeout` is an error.
        case probe(url: String, requests: Int, concurrency: Int, timeout: Double, headers: [String: String])
    }

    /// How a judged metric compares the candidate with stable.
    public enum Direction: String, Sendable, Hashable, CaseIterable {
        /// Higher is worse (latency, errors).
        case increase
        /// Lower is worse (throughput, conversions).
        case decrease
        /// Any significant change is worse.
        case either
    }

    /// `judge:` — the analysis compares samples of the candidate with samples of stable (each metric's
    /// `provider` and `baseline`), Kayenta-style, once every round has been measured.
    public struct Judge: Sendable, Hashable {
        /// Confidence level of the Mann-Whitney interval.
        public var confidence: Double = 0.98
        /// Score (0–100) at or above which the candidate passes.
        public var pass: Double = 95
        /// Score at or above which (and below `pass`) the result is marginal: a person decides.
        public var marginal: Double = 75

        public init() {}
    }

    public struct Metric: Sendable, Hashable {
        public var name: String
        public var provider: Provider
        public var successCondition: Condition?
        public var failureCondition: Condition?
        public var location: SourceLocation
        /// Judged analyses: where stable's samples come from.
        public var baseline: Provider?
        /// Judged analyses: picks the number from a JSON answer (`result.p99`).
        public var select: Condition?
        public var direction: Direction = .increase
        public var critical = false
        public var weight = 1.0
        /// A shift within this fraction of stable's mean still passes.
        public var tolerance = 0.0
        /// Measured and shown, never deciding (Argo Rollouts' dry-run metrics): its failures, errors and missing
        /// data neither fail, pause nor hold up the analysis.
        public var dryRun = false

        public init(
            name: String, provider: Provider, successCondition: Condition?, failureCondition: Condition?,
            location: SourceLocation
        ) {
            self.name = name
            self.provider = provider
            self.successCondition = successCondition
            self.failureCondition = failureCondition
            self.location = location
        }
    }

    public var name: String
    public var location: SourceLocation
    /// Seconds between measurements.
    public var interval: Double = 60
    /// Rounds to take — rounds without a measurement error: an error is never a measurement; the analysis
    /// succeeds when all were taken within the limits.
    public var count: Int = 1
    /// Whether `count` was written. A background analysis without one keeps measuring until the rollout is
    /// promoted (Argo Rollouts); a step analysis without one takes one round.
    public var countGiven = false
    public var initialDelay: Double = 0
    /// More failed measurements than this fail the analysis; -1: never fail on their number (the failure
    /// condition is shown, and only errors or missing data can end it).
    public var failureLimit: Int = 0
    /// When set: the analysis passes as soon as this many rounds in a row had every deciding metric succeed.
    public var consecutiveSuccessLimit: Int?
    /// More inconclusive ones than this pause the rollout for a person.
    public var inconclusiveLimit: Int = 0
    /// More measurement errors in a row than this fail the analysis.
    public var consecutiveErrorLimit: Int = 4
    public var metrics: [Metric] = []
    /// Set: the candidate is compared with stable by the statistical judge instead of by conditions.
    public var judge: Judge?

    public init(name: String, location: SourceLocation) {
        self.name = name
        self.location = location
    }
}

/// One parsed YAML document.
public enum ManifestDocument: Sendable, Hashable {
    case executor(ExecutorManifest)
    case environment(EnvironmentManifest)
    case service(ServiceManifest)
    case policy(PolicyManifest)
    case analysis(AnalysisManifest)
    case migration(MigrationManifest)

    public var kind: ManifestKind {
        switch self {
        case .executor: .executor
        case .environment: .environment
        case .service: .service
        case .policy: .policy
        case .analysis: .analysis
        case .migration: .migration
        }
    }

    public var name: String {
        switch self {
        case .executor(let e): e.name
        case .environment(let e): e.name
        case .service(let s): s.name
        case .policy(let p): p.name
        case .analysis(let a): a.name
        case .migration(let m): m.name
        }
    }

    public var location: SourceLocation {
        switch self {
        case .executor(let e): e.location
        case .environment(let e): e.location
        case .service(let s): s.location
        case .policy(let p): p.location
        case .analysis(let a): a.location
        case .migration(let m): m.location
        }
    }
}
