import Synchronization
public import TideExecutors
public import TideGit
public import TideManifest
public import TideState

/// What a `Reconciler` is built from. The CLI makes one (`GlobalOptions.makeReconciler`), the daemon wraps its
/// executors in a copy, the test harness and tide-bench make theirs; a copy with one thing changed (another store,
/// another repository handle) is another install.
public struct ReconcilerDependencies: Sendable {
    public var repository: Repository
    /// `--branch` (nil: the branch HEAD points to).
    public var branch: String?
    /// The folder of the repository the manifests live under ("" for all of it).
    public var root: String
    public var store: any StateStore
    public var executors: any ExecutorFactory
    public var clock: any TideClock
    public var loader: ManifestLoader
    /// How many targets a pass runs at once.
    public var concurrency: Int
    /// Publishes the commits Tide writes to a remote config repo (nil: the repository is the real one).
    public var publisher: (any BranchPublisher)?
    /// Only commits signed by an allowed key are applied (nil: signatures are not checked).
    public var verification: CommitVerification?
    /// Reads a new head's objects in another process before this one does (nil: read in-process directly).
    public var readCheck: (any RevisionReadCheck)?
    /// A head that does not descend from the revision applied last (a force-push, a rewrite) is applied like any
    /// other; without it, such a head is held (rejected) and the last good revision stays.
    public var allowHistoryRewrite = false

    public init(
        repository: Repository, branch: String? = nil, root: String = "", store: any StateStore,
        executors: any ExecutorFactory, clock: any TideClock = SystemClock(), loader: ManifestLoader = ManifestLoader(),
        concurrency: Int = 16, publisher: (any BranchPublisher)? = nil, verification: CommitVerification? = nil,
        readCheck: (any RevisionReadCheck)? = nil
    ) {
        self.repository = repository
        self.branch = branch
        self.root = root
        self.store = store
        self.executors = executors
        self.clock = clock
        self.loader = loader
        self.concurrency = concurrency
        self.publisher = publisher
        self.verification = verification
        self.readCheck = readCheck
    }
}

/// What a reconciler remembers between passes (caches and the last pass), behind one lock.
struct ReconcilerMemory {
    /// Heads whose objects the read check found readable.
    var readableCommits: Set<ObjectID> = []
    /// Commits whose signature verified, with the state of the key file then (a changed file checks again).
    var verifiedCommits: [String: String] = [:]
    /// Open actions (by id and start time) already looked for under /proc, so a step that is never run again is
    /// not looked for at every pass.
    var checkedOpenActions: Set<String> = []
    /// The root commit of each head seen (migration owners name the repository by it; the walk is done once).
    var rootCommits: [ObjectID: ObjectID] = [:]
    /// The desired state the last pass applied.
    var lastDesired: DesiredState?
    /// The last pass, when it left every target settled (in sync, nothing due later): while the branch head and
    /// the event log stay as they were, the next pass would find the same, so it is answered from here.
    var settled: SettledPass?
    /// Runs right before a contract or a down, so they are decided on the newest head: `tide run` waits there for
    /// a fetch a push asked for during the pass.
    var irreversibleHook: (@Sendable () async -> Void)?

    struct SettledPass {
        var head: ObjectID
        var lastEventID: Int64
        /// The allowed keys' file as it was (`RevisionResolver.fileStamp`): a key removed verifies the head again.
        var keys: String?
        var report: ReconcileReport
    }
}
