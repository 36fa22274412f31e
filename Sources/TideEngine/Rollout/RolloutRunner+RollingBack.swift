import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

/// Taking a rollout back to stable — after a failed step or analysis, `tide abort`, or a pre-emption — as a promise
/// kept across passes and restarts.
///
/// What must never happen: a rollback decided and then forgotten (a failed attempt leaves the target RollingBack,
/// and the next pass tries again, with a growing wait, until stable serves); a rollout that advances while it rolls
/// back (no step runs, no promotion, no new commit pre-empts it); a target recorded Failed or RolledBack while the
/// candidate still has traffic; an abort whose rollback fails leaving the target Progressing; a rollback that gives
/// up on a transient failure; traffic sent back to a version Tide had already left (after promotion, a pre-emption
/// finishes the rollout rather than rolling it back — see `preempt`).
extension RolloutRunner {
    /// How long a failed rollback waits before the next attempt: 10 s, doubling, at most 5 minutes.
    static func rollbackRetryDelay(after attempts: Int) -> Double {
        min(300, 10 * pow(2, Double(max(0, min(attempts - 1, 20)))))
    }

    /// Records that `rollout` is to be taken back to stable — the target RollingBack, with the cause, in the same
    /// transaction as `write` (the failure's events and ledger record) — then makes the first attempt.
    func startRollingBack(
        _ cause: RollbackState.Cause, target id: TargetID, rollout: Rollout, state: LiveTarget, reason: String,
        actor: Actor? = nil, writeBack: Bool, desired: DesiredState?, fallback: (any Executor)?,
        write: StateWrite = StateWrite(), calls: Int = 0
    ) async throws -> (outcome: TargetOutcome, succeeded: Bool) {
        let now = clock.now()
        var state = state
        var rollout = rollout
        rollout.rollingBack = RollbackState(cause: cause, reason: reason, at: now, actor: actor, writeBack: writeBack)
        state.rollout = rollout
        state.phase = .rollingBack
        if cause != .preemption {
            state.failed = FailedAttempt(
                version: rollout.version, configDigest: rollout.configDigest, revision: rollout.revision,
                message: reason, at: now)
            state.failed?.executorDigest = rollout.executorDigest
        }
        state.updatedAt = now
        var write = write
        write.targets = [state]
        try await journal.commit(write)
        return try await attemptRollback(state: state, desired: desired, fallback: fallback, calls: calls)
    }

    /// One attempt to bring stable back: `rollback` to the stable version (its config and revision, its own
    /// executor and files), then `health` of it (not for a pre-emption, whose new rollout checks what it deploys).
    /// On success the target is RolledBack (a failure, an abort: the failed version held, git written back when
    /// asked) or Healthy at stable (a pre-emption: the new desired state starts next). On failure it stays
    /// RollingBack and the next attempt is due after `rollbackRetryDelay`.
    func attemptRollback(
        state live: LiveTarget, desired: DesiredState?, fallback: (any Executor)?, calls: Int = 0
    ) async throws -> (outcome: TargetOutcome, succeeded: Bool) {
        guard let rollout = live.rollout, let rolling = rollout.rollingBack, let stable = rollout.previousVersion
        else {
            throw ControlError(description: "\(live.id) has no rollback under way")
        }
        let id = live.id
        var state = live
        var calls = calls
        let executor = try stableExecutor(
            of: rollout, target: id, fallback: fallback ?? candidateExecutor(of: rollout, target: id, desired: desired))
        let steps: [(ExecutorAction, ActionID.Step)] =
            rolling.cause == .preemption
            ? [(.rollback, .preemptedRollback)] : [(.rollback, .rollback), (.health, .rollbackHealth)]
        var failure: String?
        var records: [ActionRecord] = []
        for (action, step) in steps {
            // The stable side as it ran: its config and revision, not the candidate's.
            var request = ActionRequest(
                action: action, service: id.service, environment: id.environment, version: stable,
                previousVersion: rollout.version, weight: 100,
                revision: (rollout.stableRevision ?? rollout.revision).hex, actionID: "",
                config: rollout.stableConfig ?? rollout.config)
            request.strategy = rollout.strategy.rawValue
            request.identifySides(undoing: rollout)
            if action == .rollback, rolling.cause != .preemption, rollout.plan?.abortScaleDownDelay != nil {
                request.keepCandidate = true
            }
            let done = try await perform(
                request, id: ActionID(id, rollout, step: step), executor: executor, retry: RetryPolicy())
            records.append(done.record)
            calls += 1
            if !done.result.succeeded {
                failure = "\(action.rawValue) of \(stable) \(done.result.summary)"
                break
            }
        }
        if let failure {
            return (
                try await rollbackAttemptFailed(
                    state: state, failure: failure, records: records, calls: calls), false
            )
        }
        let now = clock.now()
        if rolling.cause == .preemption {
            state.rollout = nil
            state.phase = state.version == nil ? .pending : .healthy
            state.updatedAt = now
            try await journal.commit(
                StateWrite(
                    targets: [state],
                    events: [
                        deploymentEvent(
                            .deploymentSuperseded, id, rollout, at: now,
                            "\(rollout.version) superseded before it finished (weight \(rollout.weight)%): "
                                + "\(rolling.reason); traffic back to \(stable)")
                    ], actions: records))
            return (
                TargetOutcome(
                    target: id, result: .progressing, fromVersion: stable, toVersion: rollout.version,
                    classification: nil, message: "traffic back to \(stable); \(rolling.reason)",
                    executorCalls: calls, nextDue: now),
                true
            )
        }
        return (
            try await finishRollback(
                state: state, rollout: rollout, rolling: rolling, desired: desired, records: records, calls: calls),
            true
        )
    }

    /// An attempt to bring stable back failed: the target stays RollingBack, the next attempt due after
    /// `rollbackRetryDelay` (or `tide retry`).
    private func rollbackAttemptFailed(
        state live: LiveTarget, failure: String, records: [ActionRecord], calls: Int
    ) async throws -> TargetOutcome {
        var state = live
        guard var rollout = state.rollout, var rolling = rollout.rollingBack, let stable = rollout.previousVersion
        else { throw ControlError(description: "\(state.id) has no rollback under way") }
        let id = state.id
        let now = clock.now()
        rolling.attempts += 1
        rolling.lastError = failure
        let due = now.addingTimeInterval(Self.rollbackRetryDelay(after: rolling.attempts))
        rolling.nextAttemptAt = due
        rollout.rollingBack = rolling
        state.rollout = rollout
        state.updatedAt = now
        let words =
            "rolling back to \(stable) (\(rolling.reason)): attempt \(rolling.attempts) failed: \(failure); "
            + "tried again at \(GateEvaluator.format(due)) (tide retry \(id.service) --env \(id.environment) "
            + "tries now)"
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    Event(
                        time: now, kind: .rollbackFailed, target: id, revision: rollout.revision, version: stable,
                        previousVersion: rollout.version, message: words,
                        details: .object([
                            "attempt": .int(Int64(rolling.attempts)), "retryAt": .string(GateEvaluator.format(due)),
                        ]))
                ], actions: records))
        return TargetOutcome(
            target: id, result: .failed, fromVersion: stable, toVersion: rollout.version,
            classification: rollout.classification, message: words, executorCalls: calls, nextDue: due)
    }

    /// Stable serves again after a failure or an abort: the target is RolledBack, the failed deployment recovered,
    /// the rollback a deployment of its own, and git written back when asked.
    private func finishRollback(
        state live: LiveTarget, rollout: Rollout, rolling: RollbackState, desired: DesiredState?,
        records: [ActionRecord], calls: Int
    ) async throws -> TargetOutcome {
        let id = live.id
        let stable = rollout.previousVersion ?? ""
        let now = clock.now()
        var state = live
        state.phase = .rolledBack
        state.rollout = nil
        state.updatedAt = now
        if let delay = rollout.plan?.abortScaleDownDelay {
            state.keptCandidate = KeptCandidate(
                version: rollout.version, configDigest: rollout.configDigest, config: rollout.config,
                revision: rollout.revision, attempt: rollout.attempt, strategy: rollout.strategy,
                scaleDownAt: delay > 0 ? now.addingTimeInterval(delay) : nil)
        }
        var ledger = try await store.deployments(DeploymentQuery(ids: [Self.deploymentID(id, rollout)], limit: 1))
        for index in ledger.indices { ledger[index].recoveredAt = now }
        ledger.append(
            DeploymentRecord(
                id: Self.deploymentID(id, rollout) + ".rollback", target: id,
                production: ledger.first?.production ?? false, revision: rollout.revision, version: stable,
                previousVersion: rollout.version, classification: .rollback, startedAt: now, finishedAt: now,
                succeeded: true))
        let how = rolling.cause == .abort ? "after tide abort" : "automatically"
        let attempts = rolling.attempts > 0 ? " (after \(rolling.attempts) failed attempt(s))" : ""
        let events = [
            Event(
                time: now, kind: .deploymentRolledBack, target: id, revision: rollout.revision,
                version: stable, previousVersion: rollout.version, classification: .rollback,
                message: "rolled back to \(stable) \(how)\(attempts): \(rolling.reason)",
                // What ran healthy after the rollback (the planner's ROLLBACK rule reads it): the stable config,
                // which the rollback carried — or, for a rollout started before stable configs were kept, the
                // rollout's, which is the stable one only when the two are the same.
                details: (rollout.stableConfig != nil || rollout.configDigest == state.configDigest)
                    ? state.configDigest.map { digest in
                        var details: [String: JSONValue] = ["configDigest": .string(digest)]
                        if let executor = rollout.stableRelease?.executorDigest ?? state.release?.executorDigest {
                            details["executorDigest"] = .string(executor)
                        }
                        return .object(details)
                    } : nil)
        ]
        var message = "rolled back to \(stable) \(how)\(attempts)"
        // The write-back to git is owed from here on, recorded with the rollback (see `writeBack(_:)`).
        if rolling.writeBack, state.failed != nil,
            let file = try manifestFile(of: id, rollout: rollout, desired: desired)
        {
            state.failed?.writeBack = OwedWriteBack(reason: rolling.reason, file: file)
        }
        try await journal.commit(StateWrite(targets: [state], events: events, actions: records, deployments: ledger))
        if state.failed?.writeBack != nil {
            message += try await writeBack(state)
        }
        return TargetOutcome(
            target: id, result: .failed, fromVersion: rollout.previousVersion, toVersion: rollout.version,
            classification: rollout.classification, message: "\(rolling.reason); \(message)", executorCalls: calls)
    }

    /// A target that is RollingBack, at a later pass: the next attempt when it is due, else what it waits for.
    func continueRollingBack(
        _ action: PlannedAction, live: LiveTarget, desired: DesiredState
    ) async throws -> TargetOutcome {
        guard let rollout = live.rollout, let rolling = rollout.rollingBack else {
            throw ControlError(description: "\(live.id) is RollingBack with no rollout recorded")
        }
        if let due = rolling.nextAttemptAt, clock.now() < due {
            return TargetOutcome(
                target: live.id, result: .failed, fromVersion: rollout.previousVersion, toVersion: rollout.version,
                classification: rollout.classification,
                message: "rolling back to \(rollout.previousVersion ?? "-") (\(rolling.reason)): attempt "
                    + "\(rolling.attempts) failed: \(rolling.lastError ?? "-"); tried again at "
                    + GateEvaluator.format(due),
                executorCalls: 0, nextDue: due)
        }
        return try await attemptRollback(state: live, desired: desired, fallback: nil).outcome
    }

    /// The candidate's executor, from desired state when it still has the target, else from the rollout's own
    /// revision.
    func candidateExecutor(of rollout: Rollout, target id: TargetID, desired: DesiredState?) throws -> any Executor {
        let source = GitCommitSource(repository: repository, commit: rollout.revision, root: root)
        let defining = try desired?.target(id).map { _ in desired } ?? loader.load(from: source)
        guard let name = defining?.target(id)?.executor ?? desired?.services[id.service]?.executor,
            let manifest = defining?.executors[name] ?? desired?.executors[name]
        else {
            throw EngineError.executorMissing(target: id, executor: rollout.plan?.strategy.rawValue ?? "?")
        }
        return try executors.makeExecutor(for: manifest, revision: rollout.revision.hex)
    }

    /// The manifest file that defines the target (for a write-back): desired state's, else the rollout revision's.
    func manifestFile(of id: TargetID, rollout: Rollout, desired: DesiredState?) throws -> String? {
        if let file = desired?.target(id)?.location.file { return file }
        let source = GitCommitSource(repository: repository, commit: rollout.revision, root: root)
        return (try? loader.load(from: source))?.target(id)?.location.file
    }
}
