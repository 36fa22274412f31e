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
public final class Reconciler: EngineCollaborator {
    let context: EngineContext
    /// Reads the head's desired state (the last good one when the head is invalid), checked and verified.
    public let resolver: RevisionResolver
    /// Runs a target's rollout: begin, steps, analysis, rollback, pre-emption, waits.
    public let rollouts: RolloutRunner
    /// Expands, contracts and downs database migrations, and answers the `tide migrations` verbs.
    public let migrations: MigrationCoordinator
    /// Gates, approvals and promotions.
    public let promoter: Promoter
    /// The commits Tide writes to the tracked branch (write-back, rollbacks, promotions), published and verified.
    public let branchWriter: BranchWriter
    /// What the dispatch under way takes in (`replan`).
    let intake = Mutex(Intake())

    public var dependencies: ReconcilerDependencies { context.dependencies }
    public var repository: Repository { dependencies.repository }
    public var branch: String? { dependencies.branch }
    public var root: String { dependencies.root }
    public var store: any StateStore { dependencies.store }
    public var executors: any ExecutorFactory { dependencies.executors }
    public var clock: any TideClock { dependencies.clock }
    public var loader: ManifestLoader { dependencies.loader }
    public var concurrency: Int { dependencies.concurrency }
    public typealias Resolution = RevisionResolver.Resolution
    /// Where every step is recorded, grouping concurrent targets' writes.
    public var journal: StepJournal { context.journal }
    /// Executors' circuit breakers.
    public var breakers: CircuitBreakers { context.breakers }
    var lease: StateLease { context.lease }

    /// What to run before a contract or a down (see `ReconcilerMemory.irreversibleHook`).
    public func beforeIrreversible(_ hook: @escaping @Sendable () async -> Void) {
        context.memory.withLock { $0.irreversibleHook = hook }
    }

    /// The desired state the last pass applied (for what reads it between passes: the service's metrics).
    public var lastAppliedDesiredState: DesiredState? { context.memory.withLock { $0.lastDesired } }

    public init(_ dependencies: ReconcilerDependencies) {
        context = EngineContext(dependencies)
        resolver = RevisionResolver(context: context)
        migrations = MigrationCoordinator(context: context, resolver: resolver)
        branchWriter = BranchWriter(context: context, resolver: resolver, migrations: migrations)
        promoter = Promoter(context: context, resolver: resolver, branchWriter: branchWriter)
        rollouts = RolloutRunner(
            context: context, resolver: resolver, migrations: migrations, promoter: promoter,
            branchWriter: branchWriter)
    }

    /// The branch Tide tracks: `--branch`, or the branch HEAD points to (see `EngineCollaborator.trackedBranch`).
    public func trackedBranch() throws -> String {
        try context.trackedBranch()
    }

    /// Loads the head's desired state (see `RevisionResolver.resolve`).
    public func resolve(record: Bool) async throws -> Resolution {
        try await resolver.resolve(record: record)
    }

    /// The plan for the current head, without changing anything.
    public func plan() async throws -> (Resolution, Plan?) {
        let resolution = try await resolve(record: false)
        guard let desired = resolution.desired else { return (resolution, nil) }
        let live = try await store.liveTargets()
        await breakers.load(try await store.executorHealth())
        var planner = Planner(
            repository: repository, store: store, hotfixBranch: try onHotfixBranch(),
            contracted: await migrations.contractedMigrations(desired: desired, live: live))
        planner.allowHistoryRewrite = dependencies.allowHistoryRewrite
        var plan = try await planner.plan(desired: desired, live: live, now: clock.now())
        await migrations.refuseEditedMigrations(&plan, desired: desired)
        plan.promotions = try await promoter.scheduledPromotions(desired: desired)
        let report = try await migrations.migrationReport(desired: desired, live: live)
        plan.migrations = report.filter { !$0.statements.isEmpty } + downsAfterRollbacks(plan, desired, live, report)
        plan.pins = branchWriter.rollbackPins(desired: desired)
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
        try await branchWriter.publishPending()
        let head = try repository.resolveCommit(branch: trackedBranch())
        let keys = verification.map { RevisionResolver.fileStamp($0.keys) }
        if let memo = context.memory.withLock({ $0.settled }), memo.head == head, memo.keys == keys,
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
                head: head, lastEventID: try await store.lastEventID(), keys: keys, report: next)
            context.memory.withLock { $0.settled = memo }
        } else {
            context.memory.withLock { $0.settled = nil }
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
        report.migrations = try await migrations.settleMigrations(desired: last.desired, revision: last.revision)
        (report.promotions, report.scheduledPromotions) = try await promoter.autoPromote(
            desired: last.desired, head: resolution.head)
        return (report, last.desired)
    }
}
