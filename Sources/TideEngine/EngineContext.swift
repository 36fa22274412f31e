import Synchronization
import TideExecutors
import TideGit
import TideManifest
import TideState

/// What the engine's collaborators share: what the engine is built from, where every step is recorded, the
/// executors' circuit breakers, the locks and the caches. One per `Reconciler`; the collaborators hold it, never
/// copy what is in it.
final class EngineContext: Sendable {
    let dependencies: ReconcilerDependencies
    /// Where every step is recorded, grouping concurrent targets' writes.
    let journal: StepJournal
    /// Executors' circuit breakers.
    let breakers = CircuitBreakers()
    /// Commits Tide writes to the tracked branch, one at a time.
    let gitWrites = AsyncLock()
    /// The state store's lock, shared by a pass and the operators' controls this process carries out meanwhile.
    let lease: StateLease
    /// Turns on targets: a pass's run of a target, an operator's control of it.
    let targetLocks = TargetLocks()
    /// Caches and the last pass.
    let memory = Mutex(ReconcilerMemory())

    init(_ dependencies: ReconcilerDependencies) {
        self.dependencies = dependencies
        journal = StepJournal(store: dependencies.store)
        lease = StateLease(store: dependencies.store)
    }

    /// The branch Tide tracks: `--branch`, or the branch HEAD points to. A detached HEAD is refused: reconciling
    /// whatever commit happens to be checked out could take every target back.
    func trackedBranch() throws -> String {
        if let branch = dependencies.branch { return branch }
        let repository = dependencies.repository
        if let head = try repository.headBranch() { return head }
        throw EngineError.detachedHead(try? repository.resolveCommit(branch: "HEAD"))
    }
}

/// A part of the engine with a narrow job (the rollout runner, the migration coordinator, the promoter, the branch
/// writer), built on the shared `EngineContext`.
protocol EngineCollaborator: Sendable {
    var context: EngineContext { get }
}

extension EngineCollaborator {
    var repository: Repository { context.dependencies.repository }
    var branch: String? { context.dependencies.branch }
    var root: String { context.dependencies.root }
    var store: any StateStore { context.dependencies.store }
    var executors: any ExecutorFactory { context.dependencies.executors }
    var clock: any TideClock { context.dependencies.clock }
    var loader: ManifestLoader { context.dependencies.loader }
    var publisher: (any BranchPublisher)? { context.dependencies.publisher }
    var verification: CommitVerification? { context.dependencies.verification }
    var readCheck: (any RevisionReadCheck)? { context.dependencies.readCheck }
    var journal: StepJournal { context.journal }
    var breakers: CircuitBreakers { context.breakers }
    var targetLocks: TargetLocks { context.targetLocks }
    var gitWrites: AsyncLock { context.gitWrites }

    /// What to run before a contract or a down (see `ReconcilerMemory.irreversibleHook`).
    var beforeIrreversible: (@Sendable () async -> Void)? { context.memory.withLock { $0.irreversibleHook } }

    /// Whether the tracked branch is a hotfix branch (`hotfix/…`), whose deployments DORA counts as fixes.
    func onHotfixBranch() throws -> Bool {
        (try branch ?? repository.headBranch())?.hasPrefix("hotfix/") ?? false
    }

    func trackedBranch() throws -> String { try context.trackedBranch() }
}
