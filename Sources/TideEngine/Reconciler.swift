import Foundation
import Synchronization
public import TideExecutors
public import TideGit
public import TideManifest
public import TideState

/// Drives live state to the desired state of the tracked branch, one idempotent pass at a time.
///
/// A pass resolves the branch head, loads and validates its manifests (a rejected revision never touches live
/// state: the last good one is applied instead), plans, and runs what is due. Every step is written to the
/// state store before and after its executor call, so a pass killed at any point resumes where it stopped.
public final class Reconciler: Sendable {
    public let dependencies: ReconcilerDependencies
    public var repository: Repository { dependencies.repository }
    public var branch: String? { dependencies.branch }
    public var root: String { dependencies.root }
    public var store: any StateStore { dependencies.store }
    public var executors: any ExecutorFactory { dependencies.executors }
    public var clock: any TideClock { dependencies.clock }
    public var loader: ManifestLoader { dependencies.loader }
    public var concurrency: Int { dependencies.concurrency }
    public var publisher: (any BranchPublisher)? { dependencies.publisher }
    public var verification: CommitVerification? { dependencies.verification }
    public var readCheck: (any RevisionReadCheck)? { dependencies.readCheck }

    /// Where every step is recorded, grouping concurrent targets' writes.
    public let journal: StepJournal
    /// Executors' circuit breakers.
    public let breakers = CircuitBreakers()
    /// Commits Tide writes to the tracked branch, one at a time.
    let gitWrites = AsyncLock()
    /// The state store's lock, shared by a pass and the operators' controls this process carries out meanwhile.
    let lease: StateLease
    /// Turns on targets: a pass's run of a target, an operator's control of it.
    let targetLocks = TargetLocks()
    /// What the dispatch under way takes in (`replan`).
    let intake = Mutex(Intake())
    /// Caches and the last pass.
    let memory = Mutex(ReconcilerMemory())

    /// What to run before a contract or a down (see `ReconcilerMemory.irreversibleHook`).
    public func beforeIrreversible(_ hook: @escaping @Sendable () async -> Void) {
        memory.withLock { $0.irreversibleHook = hook }
    }

    var beforeIrreversible: (@Sendable () async -> Void)? { memory.withLock { $0.irreversibleHook } }

    /// The desired state the last pass applied (for what reads it between passes: the service's metrics).
    public var lastAppliedDesiredState: DesiredState? { memory.withLock { $0.lastDesired } }

    public init(_ dependencies: ReconcilerDependencies) {
        self.dependencies = dependencies
        journal = StepJournal(store: dependencies.store)
        lease = StateLease(store: dependencies.store)
    }

    /// The branch Tide tracks: `--branch`, or the branch HEAD points to. A detached HEAD is refused: reconciling
    /// whatever commit happens to be checked out could take every target back.
    public func trackedBranch() throws -> String {
        if let branch { return branch }
        if let head = try repository.headBranch() { return head }
        throw EngineError.detachedHead(try? repository.resolveCommit(branch: "HEAD"))
    }

    /// The desired state a pass would apply.
    public struct Resolution: Sendable {
        public var head: ObjectID
        /// nil when `head` was rejected and nothing was ever accepted.
        public var desired: DesiredState?
        public var rejected: [Diagnostic]
    }

    /// Loads the head's desired state; when it is invalid, falls back to the last good revision.
    /// With `record`, acceptance and rejection are written to the state store (once per revision).
    public func resolve(record: Bool) async throws -> Resolution {
        let head = try repository.resolveCommit(branch: trackedBranch())
        let status = try await store.repositoryStatus()
        let now = clock.now()
        do {
            // Read by the child first: the signature check below reads the commit in this process.
            try await checkReadable(head)
            try verifySignature(of: head)
            let desired = try loader.load(from: GitCommitSource(repository: repository, commit: head, root: root))
            if record && status.lastGoodRevision != head {
                var updated = status
                updated.lastGoodRevision = head
                updated.lastGoodAt = now
                updated.rejectedRevision = nil
                updated.rejection = []
                let commit = try repository.commit(head)
                try await journal.commit(
                    StateWrite(
                        events: [
                            Event(
                                time: now, kind: .revisionAccepted, revision: head,
                                message: "accepted \(head.short): \(commit.summary)",
                                details: .object(["targets": .int(Int64(desired.targets.count))]))
                        ], repositoryStatus: updated))
            }
            return Resolution(head: head, desired: desired, rejected: [])
        } catch let error as ManifestError {
            if record && status.rejectedRevision != head {
                var updated = status
                updated.rejectedRevision = head
                updated.rejectedAt = now
                // Kept: the first `storedDiagnostics` problems, and how many more there were (a commit with a million
                // problems must not write hundreds of megabytes into the state and every status).
                let kept = Array(error.diagnostics.prefix(Self.storedDiagnostics))
                let more = error.diagnostics.count - kept.count
                updated.rejection =
                    more > 0
                    ? kept + [Diagnostic(kept[kept.count - 1].location, "… and \(more) more problem(s), not kept")]
                    : kept
                try await journal.commit(
                    StateWrite(
                        events: [
                            Event(
                                time: now, kind: .revisionRejected, revision: head,
                                message: "rejected \(head.short): \(error.diagnostics.count) problem(s); "
                                    + "keeping \(status.lastGoodRevision?.short ?? "nothing")",
                                details: .array(updated.rejection.map { .string($0.description) }))
                        ], repositoryStatus: updated))
            }
            var desired: DesiredState?
            // The last good revision is applied only while it still verifies (verification turned on later, or
            // its key removed, leaves nothing applied rather than something unsigned).
            if let good = status.lastGoodRevision, (try? verifySignature(of: good)) != nil {
                desired = try loader.load(from: GitCommitSource(repository: repository, commit: good, root: root))
            }
            return Resolution(head: head, desired: desired, rejected: error.diagnostics)
        }
    }

    /// How many of a rejected revision's problems the state keeps.
    public static let storedDiagnostics = 200

    /// The plan for the current head, without changing anything.
    public func plan() async throws -> (Resolution, Plan?) {
        let resolution = try await resolve(record: false)
        guard let desired = resolution.desired else { return (resolution, nil) }
        let live = try await store.liveTargets()
        await breakers.load(try await store.executorHealth())
        var plan = try await Planner(
            repository: repository, store: store, hotfixBranch: try onHotfixBranch(),
            contracted: await contractedMigrations(desired: desired, live: live)
        ).plan(desired: desired, live: live, now: clock.now())
        await refuseEditedMigrations(&plan, desired: desired)
        plan.promotions = try await scheduledPromotions(desired: desired)
        let report = try await migrationReport(desired: desired, live: live)
        plan.migrations = report.filter { !$0.statements.isEmpty } + downsAfterRollbacks(plan, desired, live, report)
        plan.pins = rollbackPins(desired: desired)
        return (resolution, plan)
    }

    /// The downs a planned rollback makes due once it finishes (a plan shows them before the rollback runs):
    /// for each migration the running version needs and the version rolled back to does not, owned here.
    func downsAfterRollbacks(
        _ plan: Plan, _ desired: DesiredState, _ live: [LiveTarget], _ report: [MigrationReportEntry]
    ) -> [MigrationReportEntry] {
        var entries: [MigrationReportEntry] = []
        for action in plan.actions where action.classification == .rollback && [.deploy, .wait].contains(action.kind) {
            guard let running = live.first(where: { $0.id == action.target }),
                let target = desired.target(action.target)
            else { continue }
            for name in running.migrations where !target.migrations.contains(name) {
                guard
                    var entry = report.first(where: {
                        $0.migration == name && $0.environments.contains(action.target.environment) && $0.ours
                            && $0.phase != "contracted"
                    }), !entry.down.isEmpty
                else { continue }
                entry.next =
                    "down after \(action.target) rolls back to \(target.version), once nothing that uses the "
                    + "database needs it"
                entry.statements = entry.down
                entries.append(entry)
            }
        }
        return entries
    }

    /// One reconcile pass, holding the state store's exclusive lock for its duration (shared with the operators'
    /// controls this process carries out meanwhile, which keep to their targets).
    public func reconcile(lockTimeout: Double = 60) async throws -> ReconcileReport {
        try await lease.run(timeout: lockTimeout) {
            try await reconcileLocked()
        }
    }

    private func reconcileLocked() async throws -> ReconcileReport {
        // Commits `tide rollback` wrote while the remote was down go back on the branch (and out) first.
        try await publishPending()
        let head = try repository.resolveCommit(branch: trackedBranch())
        if let memo = memory.withLock({ $0.settled }), memo.head == head,
            try await store.lastEventID() == memo.lastEventID
        {
            return memo.report
        }
        let (report, desired) = try await reconcilePass()
        let settles: Set<TargetOutcome.Result> = [.unchanged, .deployed, .removed, .suspended]
        // Auto-promotion depends on the clock (bake times), so a repository that uses it is always re-planned.
        let promotes = desired?.environments.values.contains { $0.promotion == .auto } ?? true
        if report.head == head, report.rejected.isEmpty, report.promotions.isEmpty, !promotes,
            // A contract or down that ran may make another due (a down waits for the one applied after it).
            report.migrations.allSatisfy({ $0.result == .leftAlone }),
            report.outcomes.allSatisfy({ settles.contains($0.result) && $0.nextDue == nil })
        {
            // What the next pass would report: every target that is still desired, unchanged.
            var next = report
            next.migrations = []
            next.outcomes = report.outcomes.compactMap { outcome in
                guard outcome.result != .removed else { return nil }
                if outcome.result == .suspended { return outcome }
                return TargetOutcome(
                    target: outcome.target, result: .unchanged, fromVersion: outcome.toVersion,
                    toVersion: outcome.toVersion, classification: nil, message: nil, executorCalls: 0)
            }
            let memo = ReconcilerMemory.SettledPass(
                head: head, lastEventID: try await store.lastEventID(), report: next)
            memory.withLock { $0.settled = memo }
        } else {
            memory.withLock { $0.settled = nil }
        }
        return report
    }

    private func reconcilePass() async throws -> (ReconcileReport, DesiredState?) {
        guard let (first, actions, live) = try await planRound(1, running: []) else {
            let resolution = try await resolve(record: false)
            return (
                ReconcileReport(head: resolution.head, applied: nil, rejected: resolution.rejected, outcomes: []), nil
            )
        }
        let (outcomes, last, failure) = await dispatch(first: first, actions: actions, live: live)
        // What was asked during the pass and could not be planned is reported as the pass's error (its actions
        // are recorded; the next pass plans it).
        if let failure { throw failure }
        let resolution = last.resolution
        var report = ReconcileReport(
            head: resolution.head, applied: last.revision, rejected: resolution.rejected, outcomes: outcomes)
        report.migrations = try await settleMigrations(desired: last.desired, revision: last.revision)
        (report.promotions, report.scheduledPromotions) = try await autoPromote(
            desired: last.desired, head: resolution.head)
        return (report, last.desired)
    }
}
