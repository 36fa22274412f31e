public import Foundation
public import TideManifest

/// Everything one step changes, written in one transaction so a crash leaves either all of it or none.
public struct StateWrite: Sendable {
    public var targets: [LiveTarget] = []
    public var removedTargets: [TargetID] = []
    public var events: [Event] = []
    public var actions: [ActionRecord] = []
    public var repositoryStatus: RepositoryStatus?
    /// Deployment records to insert, or (for existing ids) whose failure and recovery fields to update.
    public var deployments: [DeploymentRecord] = []
    /// Executors' circuit breakers to record (replacing what was recorded for the same executor).
    public var executorHealth: [ExecutorHealth] = []
    /// The remote config repo's fetch and push status to record (replacing what was recorded).
    public var sourceStatus: SourceStatus?
    /// Suspensions to record (replacing one of the same scope), and scopes whose suspension ends.
    public var suspensions: [Suspension] = []
    public var liftedSuspensions: [Suspension] = []

    public init(
        targets: [LiveTarget] = [], removedTargets: [TargetID] = [], events: [Event] = [],
        actions: [ActionRecord] = [], repositoryStatus: RepositoryStatus? = nil, deployments: [DeploymentRecord] = [],
        executorHealth: [ExecutorHealth] = [], sourceStatus: SourceStatus? = nil
    ) {
        self.executorHealth = executorHealth
        self.sourceStatus = sourceStatus
        self.targets = targets
        self.removedTargets = removedTargets
        self.events = events
        self.actions = actions
        self.repositoryStatus = repositoryStatus
        self.deployments = deployments
    }
}

/// Live state: targets, the event log, executor actions, executors' health and the repository's status — what a
/// pass reads and writes. A second store (PostgreSQL, say) implements this and `DeploymentLedger`.
public protocol LiveStateStore: Sendable {
    /// Where the state lives (`sqlite:/var/lib/tide/state.sqlite`): part of the install's identity, which
    /// migration history records as its owner.
    var location: String { get }
    /// A random id made when the state was created and kept with it (moved or copied, it stays the same): part of
    /// the install's identity, which migration history records as its owner.
    func installID() async throws -> String
    func liveTargets() async throws -> [LiveTarget]
    func liveTarget(_ id: TargetID) async throws -> LiveTarget?
    func events(_ query: EventQuery) async throws -> [Event]
    /// Events of `kinds` with an id above `id`, oldest first, at most `limit` (for readers that follow the log).
    func events(after id: Int64, kinds: [Event.Kind], limit: Int) async throws -> [Event]
    func repositoryStatus() async throws -> RepositoryStatus
    /// The id of the newest event (0 when there is none): anything that changes what a pass would do appends
    /// an event, so an unchanged id and an unchanged branch head mean an unchanged plan for settled targets.
    func lastEventID() async throws -> Int64
    func action(_ id: String) async throws -> ActionRecord?
    /// Actions recorded as started and never finished: a Tide process was killed, or shut down, while they ran.
    func openActions() async throws -> [ActionRecord]
    /// Every executor's circuit breaker as last recorded.
    func executorHealth() async throws -> [ExecutorHealth]
    /// How the remote config repo's fetches and pushes went, when Tide fetches one.
    func sourceStatus() async throws -> SourceStatus?
    /// The suspensions in force (`tide suspend`).
    func suspensions() async throws -> [Suspension]
    /// Applies a write atomically — live state and the ledger records that go with it, in one transaction.
    func apply(_ write: StateWrite) async throws
    /// Runs `body` while holding the store's exclusive lock, so two Tide processes never reconcile the same state
    /// at once. Waits up to `timeout` seconds for another holder, then throws `StateError.locked`.
    @discardableResult
    func withExclusiveLock<T: Sendable>(timeout: Double, _ body: () async throws -> T) async throws -> T
}

/// The deployment ledger: one record per finished deployment, as DORA counts it. Written through
/// `LiveStateStore.apply` (in the transaction of the event that ends the deployment); read here.
public protocol DeploymentLedger: Sendable {
    /// Deployment records, newest first.
    func deployments(_ query: DeploymentQuery) async throws -> [DeploymentRecord]
    /// Counts over the deployments that finished in the filter's window, aggregated by the store.
    func deploymentCounts(_ filter: DeploymentFilter) async throws -> DeploymentCounts
    /// When the first deployment in the filter's scope (environment, service; window ignored) finished, if any.
    func firstDeployment(_ filter: DeploymentFilter) async throws -> Date?
    /// Lead time in seconds of every change shipped by a successful deployment in the window.
    func leadTimes(_ filter: DeploymentFilter) async throws -> [Double]
    /// Recovery time in seconds of every failed deployment in the window that has recovered, and how many
    /// have not recovered yet.
    func recoveryTimes(_ filter: DeploymentFilter) async throws -> (seconds: [Double], unrecovered: Int)
}

/// What the engine uses: live state and the ledger, kept together so a step's writes to both are atomic.
public typealias StateStore = LiveStateStore & DeploymentLedger

/// State store failures, with what to do about them.
public enum StateError: Error, CustomStringConvertible, Sendable {
    case locked(path: String, holder: String?, waitedSeconds: Double)
    case database(path: String, message: String)
    case newerSchema(path: String)
    /// The state file has more than one name: SQLite would keep a write-ahead log per name and corrupt it.
    case hardLinked(path: String, links: Int)
    /// The state file exists and is empty: taken as new, it would redeploy everything.
    case empty(path: String)
    /// The state file was replaced (or removed) while this process had it open.
    case replaced(path: String)

    public var description: String {
        switch self {
        case .locked(let path, let holder, let waited):
            let who = holder.map { "another tide process (\($0))" } ?? "another tide process"
            return "state \(path) is locked by \(who); gave up after waiting \(Int(waited))s "
                + "(raise --lock-timeout, or wait for it to finish)"
        case .database(let path, let message):
            return "state \(path): \(message)"
        case .newerSchema(let path):
            return "state \(path) was written by a newer version of tide; upgrade tide to use it"
        case .hardLinked(let path, let links):
            return "state \(path) has \(links) hard links: SQLite keeps its write-ahead log beside the name a file is "
                + "opened by, so each name would get a log of its own and the state would be corrupted. Remove the "
                + "extra links and use one path (a symlink is fine)"
        case .replaced(let path):
            return "state \(path) was replaced or removed while tide run had it open (a restore by mv?): what verbs "
                + "write to the file now at that path would never be seen. tide run stops (exit 1) so that its "
                + "restart opens that file (the systemd unit restarts it on failure)"
        case .empty(let path):
            return "state \(path) is an empty file, not a state tide wrote (a truncated copy or a failed restore?): "
                + "restore it from a backup, or delete it to start from nothing (every target is then deployed "
                + "again)"
        }
    }
}
