public import TideGit

/// One service in one environment: the unit of deployment.
public struct TargetID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var service: String
    public var environment: String

    public init(service: String, environment: String) {
        self.service = service
        self.environment = environment
    }

    public var description: String { "\(service)@\(environment)" }

    public static func < (lhs: TargetID, rhs: TargetID) -> Bool {
        (lhs.environment, lhs.service) < (rhs.environment, rhs.service)
    }
}

/// What should run for one target, with the environment's overrides applied.
public struct DesiredTarget: Sendable, Hashable {
    public var id: TargetID
    public var executor: String
    public var version: String
    public var config: JSONValue
    /// Digest of the canonical JSON of `config`: part of desired state, so a config-only change deploys.
    public var configDigest: String
    /// Services in the same environment that must be deployed and healthy first.
    public var dependsOn: [String]
    public var location: SourceLocation
    /// The Migrations the version needs (in this environment's database).
    public var migrations: [String] = []
    /// The digest of the service's own `spec.config` (before this environment's override): what a version carries
    /// from one environment to the next. An environment's `requires` are met only by the same version with the
    /// same base config and executor (see `ExecutorManifest.digest`).
    public var baseConfigDigest: String = ""
    /// The digest of the executor as this revision defines it (what it runs, and the files of the revision its
    /// programs come from): a change to it deploys the target again.
    public var executorDigest: String = ""

    public init(
        id: TargetID, executor: String, version: String, config: JSONValue, dependsOn: [String],
        location: SourceLocation, configDigest: String? = nil
    ) {
        self.id = id
        self.executor = executor
        self.version = version
        self.config = config
        self.configDigest = configDigest ?? Self.digest(of: config)
        self.dependsOn = dependsOn
        self.location = location
    }
}

extension DesiredTarget {
    /// The digest of a configuration: the git blob id of its canonical JSON.
    public static func digest(of config: JSONValue) -> String {
        ObjectID.blobHash(of: config.canonicalJSONBytes).hex
    }
}

/// All manifests at one revision, parsed and validated as a whole.
public struct DesiredState: Sendable {
    /// The commit the manifests were read from (nil for the index).
    public var revision: ObjectID?
    public var executors: [String: ExecutorManifest]
    public var environments: [String: EnvironmentManifest]
    public var services: [String: ServiceManifest]
    public var policies: [PolicyManifest] = []
    public var analyses: [String: AnalysisManifest] = [:]
    public var migrations: [String: MigrationManifest] = [:]
    /// Every target, dependencies before dependents.
    public private(set) var targets: [DesiredTarget]
    /// Where each target is in `targets`: a lookup by id is a dictionary read, never a scan (a pass looks up every
    /// one of tens of thousands of targets).
    private var index: [TargetID: Int]
    /// Warnings that did not stop the state from loading.
    public var warnings: [Diagnostic]

    public init(
        revision: ObjectID?, executors: [String: ExecutorManifest], environments: [String: EnvironmentManifest],
        services: [String: ServiceManifest], targets: [DesiredTarget], warnings: [Diagnostic]
    ) {
        self.revision = revision
        self.executors = executors
        self.environments = environments
        self.services = services
        self.targets = targets
        self.warnings = warnings
        self.index = Self.index(targets)
    }

    private static func index(_ targets: [DesiredTarget]) -> [TargetID: Int] {
        var index: [TargetID: Int] = [:]
        index.reserveCapacity(targets.count)
        for (offset, target) in targets.enumerated() where index[target.id] == nil { index[target.id] = offset }
        return index
    }

    public func target(_ id: TargetID) -> DesiredTarget? {
        index[id].map { targets[$0] }
    }

    /// Where the target `id` is in `targets`.
    func offset(of id: TargetID) -> Int? { index[id] }

    /// Replaces targets in their places (each keeps its id, so the index stands).
    mutating func replaceTargets(_ replacements: [(offset: Int, target: DesiredTarget)]) {
        for (offset, target) in replacements {
            precondition(targets[offset].id == target.id, "a replaced target keeps its id")
            targets[offset] = target
        }
    }

    /// Sets every target's `executorDigest` from its executor's (see `ExecutorManifest.digest`).
    mutating func setExecutorDigests(_ digests: [String: String]) {
        for offset in targets.indices {
            let digest = digests[targets[offset].executor] ?? ""
            if targets[offset].executorDigest != digest { targets[offset].executorDigest = digest }
        }
    }

    /// How a service's actions are retried: its own `retry`, else its executor's, else the defaults.
    public func retry(for service: String) -> RetryPolicy {
        let executor = services[service].flatMap { executors[$0.executor] }
        return services[service]?.resilience.retry ?? executor?.resilience.retry ?? RetryPolicy()
    }

    /// An executor's circuit breaker.
    public func circuitBreaker(for executor: String) -> CircuitBreakerPolicy {
        executors[executor]?.resilience.circuitBreaker ?? CircuitBreakerPolicy()
    }

    /// A service's progress deadline, and whether a rollout stuck past it is aborted.
    public func progressDeadline(for service: String) -> (seconds: Double, abort: Bool) {
        let settings = services[service]?.resilience ?? Resilience()
        return (settings.progressDeadline, settings.progressDeadlineAbort)
    }
}
