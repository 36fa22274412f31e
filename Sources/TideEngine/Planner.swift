public import Foundation
public import TideGit
public import TideManifest
public import TideState

/// Diffs desired state against live state and classifies every change.
public struct Planner: Sendable {
    public let repository: Repository
    public let store: any StateStore
    /// The tracked branch is a hotfix branch (`hotfix/…`): version changes on it are HOTFIX.
    public let hotfixBranch: Bool
    /// Per environment, the migrations whose contract ran there (read from the databases by the caller): a
    /// target whose running version needs one cannot go back to a version that does not.
    public let contracted: [String: [String: Date]]
    /// Environments whose databases could not be read, and why: going back past a migration there is refused.
    public let unreadable: [String: String]
    /// `--allow-history-rewrite`: a head off the live revision's history reaches the plan, and is never a
    /// ROLLBACK (without it such a head is held before planning).
    public var allowHistoryRewrite = false

    public init(
        repository: Repository, store: any StateStore, hotfixBranch: Bool = false,
        contracted: (contracted: [String: [String: Date]], unreadable: [String: String]) = ([:], [:])
    ) {
        self.repository = repository
        self.store = store
        self.hotfixBranch = hotfixBranch
        self.contracted = contracted.contracted
        self.unreadable = contracted.unreadable
    }

    /// `liveByID`: `live.byID`, when the caller has it.
    public func plan(
        desired: DesiredState, live: [LiveTarget], liveByID: [TargetID: LiveTarget]? = nil, now: Date
    ) async throws -> Plan {
        guard let revision = desired.revision else {
            throw EngineError.noRevision
        }
        let liveByID = liveByID ?? live.byID
        var actions: [PlannedAction] = []
        let evaluator = GateEvaluator(desired: desired, store: store, now: now, live: liveByID)
        let suspensions = try await store.suspensions()
        for target in desired.targets {
            if let suspension = suspensions.first(where: { $0.covers(target.id) }) {
                actions.append(
                    PlannedAction(
                        target: target.id, kind: .suspended, executor: target.executor,
                        fromVersion: liveByID[target.id]?.version, toVersion: target.version, configChanged: false,
                        classification: nil, reason: suspension.description, dependsOn: target.dependsOn))
                continue
            }
            var action = try await action(for: target, live: liveByID[target.id], desired: desired, revision: revision)
            if action.kind == .deploy, let refusal = missingContracted(target, desired: desired) {
                action.kind = .refuse
                action.reason = refusal
            }
            if let classification = action.classification {
                action.risk = evaluator.risk(of: classification, for: target.id)
            }
            if action.kind == .deploy {
                action.gates = try await evaluator.gates(for: target, classification: action.classification ?? .feature)
                if !action.gates.isEmpty { action.kind = .wait }
            }
            actions.append(action)
        }
        let desiredIDs = Set(desired.targets.map(\.id))
        // A target that left desired state while rolling back finishes its rollback first.
        for target in live where !desiredIDs.contains(target.id) && target.phase == .rollingBack {
            actions.append(
                PlannedAction(
                    target: target.id, kind: .rollingBack, executor: target.executor,
                    fromVersion: target.rollout?.version, toVersion: target.rollout?.previousVersion,
                    configChanged: false, classification: .rollback,
                    reason: "rolling back before its removal: \(target.rollout?.rollingBack?.reason ?? "")",
                    dependsOn: []))
        }
        let removals = live.filter { !desiredIDs.contains($0.id) }.sorted { $0.id > $1.id }
        for target in removals where target.phase != .rollingBack {
            if let suspension = suspensions.first(where: { $0.covers(target.id) }) {
                actions.append(
                    PlannedAction(
                        target: target.id, kind: .suspended, executor: target.executor, fromVersion: target.version,
                        toVersion: nil, configChanged: false, classification: nil,
                        reason: suspension.description + "; its removal waits", dependsOn: []))
                continue
            }
            actions.append(
                PlannedAction(
                    target: target.id, kind: .remove, executor: target.executor, fromVersion: target.version,
                    toVersion: nil, configChanged: false, classification: .removal,
                    reason: "no longer in desired state", dependsOn: [],
                    risk: RiskLevel.of(
                        .removal, production: desired.environments[target.id.environment]?.production ?? false,
                        strategy: .recreate)))
        }
        return Plan(revision: revision, actions: actions)
    }

    private func action(
        for target: DesiredTarget, live: LiveTarget?, desired: DesiredState, revision: ObjectID
    ) async throws -> PlannedAction {
        var action = PlannedAction(
            target: target.id, kind: .none, executor: target.executor, fromVersion: live?.version,
            toVersion: target.version, configChanged: live?.configDigest != target.configDigest,
            classification: nil, reason: nil, dependsOn: target.dependsOn)
        guard let live else {
            action.kind = .deploy
            action.configChanged = true
            action.classification = .feature
            action.reason = "first deployment"
            return action
        }
        if let rollingBack = Self.rollingBack(action, live: live) { return rollingBack }
        var preempted: String?
        switch Self.inFlight(action, target: target, live: live, desired: desired) {
        case .resume(let resumed): return resumed
        case .preempted(let why): preempted = why
        case .none: break
        }
        if let held = Self.heldFailed(action, target: target, live: live) { return held }
        let matchesLive = live.version == target.version && live.configDigest == target.configDigest
        if matchesLive && (live.phase == .healthy || live.phase == .rolledBack) {
            // A release recorded before executors were kept is taken as the one desired (adopted at this pass).
            if live.release.map({ $0.executorDigest == target.executorDigest }) ?? true { return action }
            return try await executorChanged(action, target: target, preempted: preempted)
        }
        action.kind = .deploy
        let change = try await classify(target: target, live: live, desired: desired, revision: revision)
        action.classification = change.classification
        action.reason = change.reason
        action.revertedCommit = change.revertedCommit
        let added = target.migrations.filter { !live.migrations.contains($0) }
        if !added.isEmpty && [.feature, .config].contains(change.classification) {
            action.classification = .migration
            action.reason = change.reason + "; needs migration " + added.joined(separator: ", ")
        }
        refuseDroppedMigrations(&action, target: target, live: live)
        if let preempted { action.reason = "\(action.reason ?? ""); \(preempted)" }
        if matchesLive {
            // Live is what is desired, but not healthy: a rollout failed after it, or this very version failed
            // and is tried again. A ROLLBACK only when it ran healthy here.
            if try await ranHealthy(target) != nil {
                action.classification = .rollback
                action.reason = "redeploy \(target.version), which ran healthy here, after a failed rollout"
            } else {
                action.classification = .feature
                action.reason = "retry \(target.version)"
            }
        }
        if action.kind == .deploy, action.classification == .rollback,
            let window = desired.services[target.id.service]?.resilience.rollbackWindow,
            try await ranRecently(target, live: live, window: window)
        {
            action.fastRollback = true
            action.reason = (action.reason ?? "") + "; fast rollback (rollbackWindow \(window)): no steps or analyses"
        }
        return action
    }

    /// A rollback under way: a promise, it goes on (retried) before anything else — a newer commit, a revert, a
    /// removal — happens to the target.
    private static func rollingBack(_ planned: PlannedAction, live: LiveTarget) -> PlannedAction? {
        guard live.phase == .rollingBack, let rollout = live.rollout, let rolling = rollout.rollingBack else {
            return nil
        }
        var action = planned
        action.kind = .rollingBack
        action.fromVersion = rollout.version
        action.toVersion = rollout.previousVersion
        action.classification = .rollback
        action.reason = "rolling back \(rollout.version) to \(rollout.previousVersion ?? "-"): \(rolling.reason)"
        return action
    }

    /// What becomes of a rollout in progress.
    private enum InFlight {
        /// It goes on where it is.
        case resume(PlannedAction)
        /// It is pre-empted, and why.
        case preempted(String)
    }

    /// A rollout in progress goes on when it still rolls out what is desired, the same way (executor, analyses,
    /// steps); anything else pre-empts it. Nil when nothing is in progress.
    private static func inFlight(
        _ planned: PlannedAction, target: DesiredTarget, live: LiveTarget, desired: DesiredState
    ) -> InFlight? {
        guard let rollout = live.rollout, live.phase == .progressing else { return nil }
        let declared = desired.services[target.id.service]?.strategy
        let same = rollout.version == target.version && rollout.configDigest == target.configDigest
        guard same else { return .preempted("pre-empts \(rollout.version), which was rolling out") }
        if let executor = rollout.executorDigest, executor != target.executorDigest {
            return .preempted("the executor changed while \(rollout.version) rolled out: it is pre-empted")
        }
        if let analysis = rollout.changedAnalysis(in: desired.analyses) {
            return .preempted("analysis \(analysis) changed while \(rollout.version) rolled out: it is pre-empted")
        }
        guard rollout.runsSameSteps(as: declared) else {
            return .preempted("the strategy's steps changed while \(rollout.version) rolled out: it is pre-empted")
        }
        var action = planned
        action.kind = .resume
        action.fromVersion = rollout.previousVersion
        action.classification = rollout.classification
        action.reason = "goes on at \(rollout.steps(declared: declared).label(rollout.step))"
        return .resume(action)
    }

    /// A version that failed is held until an operator retries it or a commit changes its version or config.
    private static func heldFailed(_ planned: PlannedAction, target: DesiredTarget, live: LiveTarget) -> PlannedAction?
    {
        guard let failed = live.failed, live.phase == .failed || live.phase == .rolledBack,
            failed.version == target.version,
            failed.configDigest == target.configDigest,
            failed.executorDigest == nil || failed.executorDigest == target.executorDigest
        else { return nil }
        var action = planned
        action.kind = .holdFailed
        action.reason =
            "\(failed.version) failed at \(failed.revision.short): \(failed.message). Held: "
            + "tide retry \(target.id.service) --env \(target.id.environment) tries it again, and so does a "
            + "commit that changes its version or config (a commit that changes neither does not)"
        return action
    }

    /// Only the executor changed (its definition, or a script of the revision it runs): a deployment like a config
    /// change, through every gate.
    private func executorChanged(
        _ planned: PlannedAction, target: DesiredTarget, preempted: String?
    ) async throws -> PlannedAction {
        var action = planned
        action.kind = .deploy
        action.configChanged = true
        action.classification = .config
        action.reason = "executor '\(target.executor)' changed (its definition or the files its programs come from)"
        if try await ranHealthy(target) != nil {
            action.classification = .rollback
            action.reason = "executor '\(target.executor)' back to what ran healthy here before"
        }
        if let preempted { action.reason = "\(action.reason ?? ""); \(preempted)" }
        return action
    }

    /// A version that drops a migration is refused while that migration's contract ran here (the database may
    /// lack what the version needs), or while the database cannot be read to tell.
    private func refuseDroppedMigrations(_ action: inout PlannedAction, target: DesiredTarget, live: LiveTarget) {
        let contractedHere = contracted[target.id.environment] ?? [:]
        if let dropped = live.migrations.first(where: { !target.migrations.contains($0) && contractedHere[$0] != nil })
        {
            action.kind = .refuse
            action.reason =
                "cannot go to \(target.version): migration \(dropped) was contracted in \(target.id.environment) at "
                + "\(GateEvaluator.format(contractedHere[dropped]!)), so \(target.version) (which does not list it) "
                + "may need what the contract removed. Roll forward instead: a new version with the fix (and a new "
                + "migration if the schema must change back). Live app and database are left as they are"
        }
        if let why = unreadable[target.id.environment],
            let dropped = live.migrations.first(where: { !target.migrations.contains($0) })
        {
            action.kind = .refuse
            action.reason =
                "cannot go to \(target.version) now: it drops migration \(dropped), and the database cannot be read to "
                + "tell whether its contract ran (\(why)); tried again at the next pass"
        }
    }

    /// Whether what `target` asks for is one of the last `window` releases that ran healthy here before the one
    /// live now (Argo Rollouts' `rollbackWindow`): read from the deployments and rollbacks the event log records,
    /// newest first, each release (version and config) counted once.
    func ranRecently(_ target: DesiredTarget, live: LiveTarget, window: Int) async throws -> Bool {
        let events = try await store.events(
            EventQuery(
                service: target.id.service, environment: target.id.environment,
                kinds: [.deploymentSucceeded, .deploymentRolledBack], limit: 50 * window))
        var releases: [String] = []
        for event in events {
            guard let version = event.version else { continue }
            var digest = "-"
            if case .object(let details)? = event.details, case .string(let value)? = details["configDigest"] {
                digest = value
            }
            let release = "\(version) \(digest)"
            if !releases.contains(release) { releases.append(release) }
            if releases.count > window { break }
        }
        let current = live.version.map { "\($0) \(live.configDigest ?? "-")" }
        let earlier = releases.filter { $0 != current }.prefix(window)
        return earlier.contains("\(target.version) \(target.configDigest)")
    }

    /// A deployment without a migration its service lists elsewhere, when that migration's contract ran (or
    /// started) on this environment's database: the old schema the version may need is gone — whatever live state
    /// says (a new environment on a shared database, a fresh state file).
    func missingContracted(_ target: DesiredTarget, desired: DesiredState) -> String? {
        let contractedHere = contracted[target.id.environment] ?? [:]
        let missing = MigrationCoordinator.listedElsewhere(target, desired: desired).filter {
            !target.migrations.contains($0) && contractedHere[$0] != nil
        }.sorted()
        guard let name = missing.first, let at = contractedHere[name] else { return nil }
        return "cannot deploy \(target.version) to \(target.id.environment): migration \(name) was contracted on its "
            + "database at \(GateEvaluator.format(at)), and \(target.id.service) lists it elsewhere but not for "
            + "\(target.version) here, which may need what the contract removed. List \(name) for this environment "
            + "(or deploy a version that does)"
    }

    /// How a change was classified, and why.
    struct Classification {
        var classification: ChangeClass
        var reason: String
        var revertedCommit: ObjectID?
    }

    /// A change is a ROLLBACK only when what it brings to the target — the version and the config — ran healthy
    /// on that target before: a revert commit in the range is not enough (a revert written back after a failed
    /// rollout, followed by a new version, would otherwise take the never-run version past every gate).
    ///
    /// - FEATURE when a revert of a revert re-applies a change;
    /// - ROLLBACK when a revert brings back what ran healthy here (the reason names the revert), or when the
    ///   version changes to one that ran healthy here with this config;
    /// - HOTFIX when the version changes and the service is marked `hotfix: true` or the branch is a hotfix branch;
    /// - CONFIG when only the config changed; FEATURE otherwise.
    func classify(
        target: DesiredTarget, live: LiveTarget, desired: DesiredState, revision: ObjectID
    ) async throws -> Classification {
        var ranBefore = try await ranHealthy(target)
        var unproven: String?
        if let liveRevision = live.revision, liveRevision != revision, !repository.contains(liveRevision) {
            // History rewritten (and the old commits garbage-collected): which commits are new cannot be told —
            // and a branch moved back is not a revert: never a ROLLBACK (that would skip the gates).
            unproven =
                "the live revision \(liveRevision.short) is no longer in the repository (history was rewritten), "
                + "so reverts cannot be seen: classified by version and config alone, never as a rollback"
            ranBefore = nil
        } else if allowHistoryRewrite, let liveRevision = live.revision, liveRevision != revision,
            (try? repository.isAncestor(liveRevision, of: revision)) != true
        {
            unproven =
                "\(revision.short) does not descend from the live revision \(liveRevision.short) (history was "
                + "rewritten): a rollback is a commit on top of what runs, so this is not one"
            ranBefore = nil
        } else if let liveRevision = live.revision, liveRevision != revision {
            let file = target.location.file
            let commits = try repository.commits(from: revision, excluding: liveRevision, touching: [file], limit: 200)
            if let revert = commits.first(where: { $0.revertedCommit != nil }), let reverted = revert.revertedCommit {
                if let original = try? repository.commit(reverted), let undone = original.revertedCommit {
                    return Classification(
                        classification: .feature,
                        reason: "\(revert.id.short) re-applies \(undone.short) (reverts the revert \(reverted.short))")
                }
                if ranBefore != nil {
                    return Classification(
                        classification: .rollback, reason: "\(revert.id.short) reverts \(reverted.short)",
                        revertedCommit: reverted)
                }
                unproven =
                    "\(revert.id.short) reverts \(reverted.short), but \(target.version) with this config never ran "
                    + "healthy on \(target.id), so it is not a rollback"
            }
        }
        let versionChanged = target.version != live.version
        func because(_ reason: String) -> String { unproven.map { "\(reason); \($0)" } ?? reason }
        if versionChanged && (desired.services[target.id.service]?.hotfix == true || hotfixBranch) {
            return Classification(
                classification: .hotfix,
                reason: because(
                    "hotfix \(live.version ?? "nothing") → \(target.version)"
                        + (hotfixBranch ? " on a hotfix branch" : "")))
        }
        if versionChanged {
            if let previous = ranBefore {
                let when = ISO8601DateFormatter().string(from: previous)
                return Classification(
                    classification: .rollback, reason: "\(target.version) ran healthy here before (deployed \(when))")
            }
            return Classification(
                classification: .feature, reason: because("\(live.version ?? "nothing") → \(target.version)"))
        }
        return Classification(classification: .config, reason: because("config changed"))
    }

    /// When the target's desired version ran healthy on it with the desired config: a deployment that
    /// succeeded, or a stable version that an automatic rollback brought back and checked. Events written before
    /// config digests were recorded match by version.
    func ranHealthy(_ target: DesiredTarget) async throws -> Date? {
        let earlier = try await store.events(
            EventQuery(
                service: target.id.service, environment: target.id.environment,
                kinds: [.deploymentSucceeded, .deploymentRolledBack], limit: 1000))
        return earlier.first { event in
            guard event.version == target.version else { return false }
            guard case .object(let details)? = event.details, case .string(let digest)? = details["configDigest"]
            else { return event.kind == .deploymentSucceeded }
            // Events written before executors were recorded match by config.
            if case .string(let executor)? = details["executorDigest"], executor != target.executorDigest {
                return false
            }
            return digest == target.configDigest
        }?.time
    }
}

/// Engine failures that are not about one target.
public enum EngineError: Error, CustomStringConvertible, Sendable {
    case noRevision
    case noGoodRevision(head: ObjectID, diagnostics: [Diagnostic])
    case executorMissing(target: TargetID, executor: String)
    /// HEAD is detached and no branch was named: Tide would deploy whatever was checked out.
    case detachedHead(ObjectID?)
    /// Tide would write a commit on a branch head whose signature does not verify.
    case unverifiedParent(ObjectID, String)
    /// Processes of an interrupted step survived SIGKILL (uninterruptible sleep): the step cannot run again yet.
    case interruptedProcessesRunning([Int32])
    /// `--path` names no directory of the head, and nothing was ever applied: the operator's mistake, not the
    /// revision's (it is not recorded as a rejection).
    case rootMissing(root: String, head: ObjectID)

    public var description: String {
        switch self {
        case .noRevision:
            return "desired state has no revision to deploy from"
        case .noGoodRevision(let head, let diagnostics):
            return "revision \(head.short) was rejected and no earlier revision was ever accepted:\n"
                + diagnostics.map(\.description).joined(separator: "\n")
        case .executorMissing(let target, let executor):
            return "\(target): executor '\(executor)' is not defined in desired state"
        case .detachedHead(let commit):
            return "HEAD is detached" + (commit.map { " at \($0.short)" } ?? "")
                + ": Tide tracks a branch, and deploying whatever is checked out could take production back. "
                + "Pass --branch NAME (for example --branch main), or check the branch out again"
        case .unverifiedParent(let head, let why):
            return "Tide writes no commit on \(head.short): \(why)"
        case .rootMissing(let root, let head):
            return "--path '\(root)' is not a directory of \(head.short) (a file, or not in the repository): give "
                + "the directory inside the repository that holds the manifests"
        case .interruptedProcessesRunning(let pids):
            return "executor processes of an interrupted step are still running after SIGKILL (pid "
                + pids.map(String.init).joined(separator: ", ") + "); the step runs again once they are gone"
        }
    }
}
