import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

/// One target's rollout: start it (pre-empting an older one, expanding its migrations), then run its frozen steps
/// through `RolloutMachine` — each executor action through the step journal — until it completes, waits, or fails
/// (and rolls back).
extension Reconciler {
    func roll(
        _ action: PlannedAction, target: DesiredTarget, live: LiveTarget?, desired: DesiredState, revision: ObjectID
    ) async throws -> TargetOutcome {
        let now = clock.now()
        guard let executorManifest = desired.executors[target.executor] else {
            throw EngineError.executorMissing(target: target.id, executor: target.executor)
        }
        // A rollout under way runs its own revision's files (an interrupted step runs again as it started).
        let executorRevision = action.kind == .resume ? (live?.rollout?.revision ?? revision) : revision
        let executor = try executors.makeExecutor(for: executorManifest, revision: executorRevision.hex)

        var state =
            live
            ?? LiveTarget(id: target.id, executor: target.executor, phase: .pending, updatedAt: now)
        // An error an earlier pass recorded on the target is over once this one gets this far.
        if state.waitingOn.contains(where: \.isError) {
            state.waiting = nil
            state.waitingOn.removeAll(where: \.isError)
        }
        var rollout: Rollout
        if action.kind == .resume, let existing = state.rollout {
            rollout = existing
        } else {
            switch try await begin(
                action, target: target, state: &state, desired: desired, revision: revision, executor: executor,
                now: now)
            {
            case .started(let started): rollout = started
            case .ended(let outcome): return outcome
            }
        }

        var calls = 0
        let plan = rollout.steps(declared: desired.services[target.id.service]?.strategy)
        // A rollout started before plans were kept gets its plan now (written with its next step), so its
        // rollback and measurements say the strategy it runs.
        if rollout.plan == nil { rollout.plan = plan }
        let promote = "tide promote \(target.id.service) --env \(target.id.environment)"
        var backgroundDue: Date?
        let service = target.id.service
        let deadline = desired.progressDeadline(for: service)
        steps: while true {
            if targetLocks.operatorWaits(target.id) {
                // An operator's control of this target comes before its next step: the rollout goes on after it.
                state.rollout = rollout
                try await journal.commit(StateWrite(targets: [state]))
                return TargetOutcome(
                    target: target.id, result: .progressing, fromVersion: rollout.previousVersion,
                    toVersion: rollout.version, classification: rollout.classification,
                    message: "\(plan.label(rollout.step)): an operator's request comes first", executorCalls: calls,
                    nextDue: clock.now())
            }
            if RolloutMachine.stalled(rollout, plan: plan, now: clock.now(), deadline: deadline.seconds),
                deadline.abort
            {
                return try await failRollout(
                    target: target, rollout: rollout, state: state, desired: desired,
                    message:
                        "no progress for \(ManifestDuration.format(deadline.seconds)) at \(plan.label(rollout.step)) "
                        + "(progressDeadline)" + (rollout.retryReason.map { ": \($0)" } ?? ""),
                    details: ["progressDeadlineSeconds": .double(deadline.seconds)], action: nil, executor: executor,
                    calls: calls)
            }
            if RolloutMachine.measuresInBackground(rollout, plan: plan), let name = plan.backgroundAnalysis {
                // Beside the steps, from the candidate's first check to promotion — also while the rollout waits
                // for a person, whom a failing background analysis overrules.
                let (verdict, measured) = try await analyse(
                    name, step: -1, rollout: &rollout, target: target, desired: desired, background: true)
                calls += measured
                state.rollout = rollout
                state.updatedAt = clock.now()
                switch verdict {
                case .wait(let due, _):
                    backgroundDue = due
                case .passed:
                    backgroundDue = nil
                case .inconclusive(let summary):
                    // Its remaining rounds go on while a person decides: the pass is due again for the next one.
                    backgroundDue = nextRound(of: rollout.background, analysis: desired.analyses[name])
                    if !rollout.paused {
                        return try await pauseForPerson(
                            "background analysis \(name)", summary: summary, target: target.id, rollout: &rollout,
                            state: &state, calls: calls, background: backgroundDue)
                    }
                case .failed(let summary):
                    return try await failRollout(
                        target: target, rollout: rollout, state: state, desired: desired,
                        message: "background analysis \(name) failed: \(summary)",
                        details: ["analysis": .string(name)], action: nil, executor: executor, calls: calls)
                }
                if measured > 0 { try await journal.commit(StateWrite(targets: [state])) }
            }
            let step = rollout.step
            let label = plan.label(step)
            switch RolloutMachine.next(rollout, plan: plan, now: clock.now(), promoteCommand: promote) {
            case .complete:
                break steps
            case .held(let message):
                return try await progressing(
                    background: backgroundDue, target.id, rollout, state: &state, message: message,
                    executorCalls: calls)
            case .wait(let due, let message):
                return try await progressing(
                    background: backgroundDue, target.id, rollout, state: &state, message: message,
                    executorCalls: calls, nextDue: due)
            case .skip(let words):
                let now = clock.now()
                rollout = RolloutMachine.advanced(rollout, plan: plan, at: now)
                state.rollout = rollout
                state.updatedAt = now
                guard case .pause = plan.steps[step].step else { continue }
                try await commitStep(state, .stepSucceeded, target.id, rollout, at: now, "\(label): \(words)")
            case .analyse(let name):
                let (verdict, measured) = try await analyse(
                    name, step: step, rollout: &rollout, target: target, desired: desired)
                calls += measured
                state.rollout = rollout
                state.updatedAt = clock.now()
                switch verdict {
                case .wait(let due, let summary):
                    try await journal.commit(StateWrite(targets: [state]))
                    return try await progressing(
                        background: backgroundDue,
                        target.id, rollout, state: &state,
                        message: "weight \(rollout.weight), analysis \(name): \(summary); next measurement at "
                            + GateEvaluator.format(due), executorCalls: calls, nextDue: due)
                case .inconclusive(let summary):
                    return try await pauseForPerson(
                        "analysis \(name)", summary: summary, target: target.id, rollout: &rollout, state: &state,
                        calls: calls, background: backgroundDue)
                case .failed(let summary):
                    return try await failRollout(
                        target: target, rollout: rollout, state: state, desired: desired,
                        message: "analysis \(name) failed: \(summary)", details: ["analysis": .string(name)],
                        action: nil, executor: executor, calls: calls)
                case .passed(let summary):
                    rollout = RolloutMachine.advanced(rollout, plan: plan, at: clock.now())
                    state.rollout = rollout
                    try await commitStep(
                        state, .stepSucceeded, target.id, rollout, at: clock.now(), "\(label): passed (\(summary))")
                }
            case .act(let action, let weight, let traffic):
                if RolloutMachine.promotes(rollout, plan: plan), !rollout.full,
                    let background = plan.backgroundAnalysis,
                    let unproven = unprovenMetrics(background, rollout.background, desired: desired)
                {
                    // No data is never a success: the background analysis must have measured every metric
                    // successfully once before the candidate gets all the traffic.
                    if let due = backgroundDue {
                        return try await progressing(
                            background: due, target.id, rollout, state: &state,
                            message: "\(label): waits for background analysis \(background) to measure "
                                + "\(unproven) successfully before promotion",
                            executorCalls: calls)
                    }
                    return try await pauseForPerson(
                        "background analysis \(background)",
                        summary: "no successful measurement of \(unproven) before promotion", target: target.id,
                        rollout: &rollout, state: &state, calls: calls)
                }
                if let due = rollout.retryAt, clock.now() < due {
                    // Backing off after a transient failure: not before the announced time.
                    let stuck =
                        RolloutMachine.stalled(rollout, plan: plan, now: clock.now(), deadline: deadline.seconds)
                        ? "stuck: no progress for \(ManifestDuration.format(deadline.seconds)) (progressDeadline; "
                            + "progressDeadlineAbort is false, so it keeps trying; tide abort takes it back); " : ""
                    return try await progressing(
                        background: backgroundDue, target.id, rollout, state: &state,
                        message: "\(stuck)\(label): \(rollout.retryReason ?? "failed transiently"); tries again at "
                            + GateEvaluator.format(due), executorCalls: calls, nextDue: due)
                }
                if let open = await breakers.refusal(for: target.executor, now: clock.now()) {
                    return try await progressing(
                        background: backgroundDue, target.id, rollout, state: &state,
                        message: "\(label): waits: \(open)", executorCalls: calls, nextDue: open.until)
                }
                var request = ActionRequest(
                    action: action, service: target.id.service, environment: target.id.environment,
                    version: rollout.version, previousVersion: rollout.previousVersion, weight: weight,
                    revision: rollout.revision.hex, actionID: "", config: rollout.config)
                request.strategy = plan.strategy.rawValue
                request.traffic = traffic
                request.identifySides(of: rollout)
                let actionID = ActionID(target.id, rollout, step: .rollout(index: step, action))
                let retry =
                    await breakers.inTrial(target.executor) ? RetryPolicy(limit: 0) : desired.retry(for: service)
                let done = try await perform(
                    request, id: actionID, executor: executor, retry: retry,
                    breaker: (target.executor, desired.circuitBreaker(for: target.executor)),
                    announce: StateWrite(events: [
                        stepEvent(
                            .stepStarted, target.id, rollout, at: clock.now(), label,
                            details: ["actionId": .string(actionID.description)])
                    ]))
                calls += 1
                let result = done.result
                var details: [String: JSONValue] = [
                    "actionId": .string(actionID.description),
                    "durationSeconds": .double((result.duration * 1000).rounded() / 1000),
                ]
                if !result.standardError.isEmpty { details["stderr"] = .string(result.standardError) }
                if done.attempts > 1 { details["attempts"] = .int(Int64(done.attempts)) }
                // A health check that times out is the candidate failing it, not the platform being busy.
                if !result.succeeded && result.isTransient && !(action == .health && result.isTimeout) {
                    var outcome = try await waitAfterTransientFailure(
                        action, done: done, details: details, retry: retry, target: target.id, label: label,
                        rollout: &rollout, state: &state, calls: calls, background: backgroundDue)
                    if RolloutMachine.stalled(rollout, plan: plan, now: clock.now(), deadline: deadline.seconds) {
                        outcome.message =
                            "stuck: no progress for \(ManifestDuration.format(deadline.seconds)) (progressDeadline; "
                            + "progressDeadlineAbort is false, so it keeps trying; tide abort takes it back); "
                            + (outcome.message ?? "")
                    }
                    return outcome
                }
                guard result.succeeded else {
                    details["outcome"] = .string(result.summary)
                    return try await failRollout(
                        target: target, rollout: rollout, state: state, desired: desired,
                        message: "\(action.rawValue) of \(rollout.version) \(result.summary)", details: details,
                        action: done.record, executor: executor, calls: calls)
                }
                rollout = RolloutMachine.advanced(rollout, plan: plan, at: done.finishedAt)
                state.rollout = rollout
                state.updatedAt = done.finishedAt
                try await commitStep(
                    state, .stepSucceeded, target.id, rollout, at: done.finishedAt, "\(action.rawValue) succeeded",
                    details: details, actions: [done.record])
            }
        }

        return try await complete(target: target, rollout: rollout, state: state, desired: desired, calls: calls)
    }

    /// Every step is done: the candidate is what runs, healthy; the deployment goes into the ledger.
    func complete(
        target: DesiredTarget, rollout: Rollout, state live: LiveTarget, desired: DesiredState, calls: Int
    ) async throws -> TargetOutcome {
        var state = live
        let doneAt = clock.now()
        let ledger = try await succeededDeployment(
            target: target, rollout: rollout, liveRevision: state.revision, desired: desired, at: doneAt)
        state.phase = .healthy
        state.version = rollout.version
        state.configDigest = rollout.configDigest
        state.revision = rollout.revision
        if state.migrations != rollout.migrations || (state.migratedAt == nil && !rollout.migrations.isEmpty) {
            state.migratedAt = rollout.migrations.isEmpty ? nil : doneAt
        }
        state.migrationUse = Self.migrationUse(
            state.migrationUse, from: state.migrations, to: rollout.migrations,
            rollback: rollout.classification == .rollback, service: desired.services[target.id.service],
            desired: desired)
        state.migrations = rollout.migrations
        state.rollout = nil
        state.failed = nil
        state.updatedAt = doneAt
        state.release = Release(
            baseConfigDigest: rollout.baseConfigDigest ?? target.baseConfigDigest,
            executorDigest: rollout.executorDigest ?? target.executorDigest, deployedAt: doneAt, config: rollout.config)
        let lead = doneAt.timeIntervalSince(rollout.startedAt)
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    deploymentEvent(
                        .deploymentSucceeded, target.id, rollout, at: doneAt,
                        "\(rollout.version) is live" + (rollout.reason.map { " (\($0))" } ?? ""),
                        details: [
                            "durationSeconds": .double((lead * 1000).rounded() / 1000),
                            "deploymentId": .string(ledger[0].id),
                            // What ran healthy: the planner's ROLLBACK rule reads it.
                            "configDigest": .string(rollout.configDigest),
                            "executorDigest": .string(rollout.executorDigest ?? target.executorDigest),
                        ])
                ],
                deployments: ledger))
        return TargetOutcome(
            target: target.id, result: .deployed, fromVersion: rollout.previousVersion, toVersion: rollout.version,
            classification: rollout.classification, message: rollout.reason, executorCalls: calls)
    }

    /// How starting a rollout went.
    private enum Start {
        case started(Rollout)
        /// It did not start (a pre-emption failed, the database is not ready): the target's outcome.
        case ended(TargetOutcome)
    }

    /// Starts a rollout: pre-empts one still in progress for an older desired state (the executor hears that its
    /// candidate is gone before the new one is deployed), expands (and backfills) what the version needs — a
    /// failure leaves the database and the live app as they were — then freezes the plan and records the start.
    private func begin(
        _ action: PlannedAction, target: DesiredTarget, state: inout LiveTarget, desired: DesiredState,
        revision: ObjectID, executor: any Executor, now: Date
    ) async throws -> Start {
        let classification = action.classification ?? .feature
        if let old = state.rollout, state.phase == .progressing {
            if let failure = try await preempt(old, target: target, state: &state, executor: executor, desired: desired)
            {
                return .ended(failure)
            }
        }
        if state.waitingOn == [.database], let due = state.migrationUse.retryAt, now < due {
            // Backing off after a transient database error: not before the announced time.
            return .ended(
                TargetOutcome(
                    target: target.id, result: .waiting, fromVersion: state.version, toVersion: target.version,
                    classification: nil, message: state.waiting, executorCalls: 0, nextDue: due))
        }
        switch try await prepareMigrations(for: target, desired: desired, revision: revision) {
        case .ready:
            state.migrationUse.retries = 0
            state.migrationUse.retryAt = nil
        case .failed(let failure):
            return .ended(
                try await failBeforeRollout(
                    target: target, state: state, revision: revision, message: failure, calls: 0))
        case .retry(let message):
            return .ended(
                try await waitForDatabase(target: target, state: state, revision: revision, message: message))
        }
        var rollout = Rollout(
            version: target.version, config: target.config, configDigest: target.configDigest,
            revision: revision, previousVersion: state.version, classification: classification,
            reason: action.reason, revertedCommit: action.revertedCommit, startedAt: now)
        rollout.migrations = target.migrations
        (rollout.stableConfig, rollout.stableRevision) = stableSide(of: state)
        rollout.stableConfigDigest = state.configDigest
        rollout.baseConfigDigest = target.baseConfigDigest
        rollout.executorDigest = target.executorDigest
        rollout.stableRelease = state.version == nil ? nil : state.release
        rollout.attempt = Self.newAttempt()
        rollout.plan =
            action.fastRollback
            ? RolloutPlan.fastRollbackPlan
            : RolloutPlan.of(
                desired.services[target.id.service]?.strategy ?? StrategySpec(), firstDeployment: state.version == nil)
        // The analyses it runs are frozen with its steps (by digest): an edit of one pre-empts it.
        if let names = rollout.plan?.analysisNames {
            rollout.plan?.analyses = Dictionary(
                uniqueKeysWithValues: names.compactMap { name in desired.analyses[name].map { (name, $0.digest) } })
        }
        state.executor = target.executor
        state.phase = .progressing
        state.rollout = rollout
        state.waiting = nil
        state.waitingOn = []
        state.updatedAt = now
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    Event(
                        time: now, kind: .deploymentStarted, target: target.id, revision: revision,
                        version: target.version, previousVersion: state.version, classification: classification,
                        message: "deploying \(target.version)"
                            + (state.version.map { " (was \($0))" } ?? "") + (action.reason.map { ": \($0)" } ?? "")
                    )
                ]))
        return .started(rollout)
    }

    /// A rollout that goes on at a later pass.
    /// `background`: when the background analysis measures next; the pass is due again at the earlier time.
    /// The due time is kept in the rollout (written when it changes), so `tide status` can say when the rollout
    /// goes on.
    func progressing(
        background: Date? = nil, _ target: TargetID, _ rollout: Rollout, state: inout LiveTarget, message: String,
        executorCalls: Int, nextDue: Date? = nil
    ) async throws -> TargetOutcome {
        let due = [nextDue, background].compactMap { $0 }.min()
        if state.rollout != nil && state.rollout?.nextDue != due {
            var rollout = rollout
            rollout.nextDue = due
            state.rollout = rollout
            try await journal.commit(StateWrite(targets: [state]))
        }
        return TargetOutcome(
            target: target, result: .progressing, fromVersion: rollout.previousVersion, toVersion: rollout.version,
            classification: rollout.classification, message: message, executorCalls: executorCalls, nextDue: due)
    }

    /// A step (an action, or an analysis) failed: the deployment failed, the version is held, and a canary — or
    /// any rollout with `rollback.automatic` — is taken back to stable (RollingBack until that succeeds; see
    /// `startRollingBack`). A recreate without automatic rollback is marked Failed where it stands.
    func failRollout(
        target: DesiredTarget, rollout: Rollout, state failedState: LiveTarget, desired: DesiredState, message: String,
        details: [String: JSONValue], action: ActionRecord?, executor: any Executor, calls: Int
    ) async throws -> TargetOutcome {
        let now = clock.now()
        var state = failedState
        let service = desired.services[target.id.service]
        let keepsStable = rollout.steps(declared: service?.strategy).keepsStable
        let rollsBack =
            (service.map { $0.rollback.automatic || keepsStable } ?? false) && rollout.previousVersion != nil
        let write = StateWrite(
            events: [
                stepEvent(.stepFailed, target.id, rollout, at: now, message, details: details),
                deploymentEvent(
                    .deploymentFailed, target.id, rollout, at: now, message,
                    details: ["deploymentId": .string(Self.deploymentID(target.id, rollout))]),
            ],
            actions: action.map { [$0] } ?? [],
            deployments: [
                failedDeployment(target: target.id, rollout: rollout, desired: desired, at: now, message: message)
            ])
        if rollsBack {
            // Stable never stopped in any strategy but recreate: traffic always goes back to it. A recreate rolls
            // back only when asked to.
            return try await startRollingBack(
                .failure, target: target.id, rollout: rollout, state: state, reason: message,
                writeBack: service?.rollback.writeBack == .revert, desired: desired, fallback: executor, write: write,
                calls: calls
            ).outcome
        }
        state.phase = .failed
        state.rollout = nil
        if rollout.step > 0, rollout.previousVersion == state.version {
            // Recreate without rollback, past its deploy: the candidate is what runs now (unhealthy), and so
            // are the migrations it needs — status must not say the old version runs, and nothing may undo the
            // schema the candidate writes to.
            state.version = rollout.version
            state.configDigest = rollout.configDigest
            state.revision = rollout.revision
            state.migrationUse = Self.migrationUse(
                state.migrationUse, from: state.migrations, to: rollout.migrations, rollback: false,
                service: service, desired: desired)
            state.migrations = rollout.migrations
            state.migratedAt = rollout.migrations.isEmpty ? nil : now
        }
        state.failed = FailedAttempt(
            version: rollout.version, configDigest: rollout.configDigest, revision: rollout.revision,
            message: message, at: now)
        state.failed?.executorDigest = rollout.executorDigest
        state.updatedAt = now
        var failed = write
        failed.targets = [state]
        try await journal.commit(failed)
        return TargetOutcome(
            target: target.id, result: .failed, fromVersion: rollout.previousVersion, toVersion: rollout.version,
            classification: rollout.classification, message: message, executorCalls: calls)
    }
}

extension Reconciler {
    /// The executor the stable side of `rollout` ran with, for actions that bring it back (a rollback, a
    /// pre-emption): the stable revision's executor of `target`, with that revision's files — a broken script a
    /// candidate brought is not what takes it away. `fallback` (the candidate's) when the stable revision cannot be
    /// read (history rewritten) or does not have the target.
    func stableExecutor(of rollout: Rollout, target: TargetID, fallback: any Executor) -> any Executor {
        guard let revision = rollout.stableRevision, revision != rollout.revision,
            let stable = try? loader.load(from: GitCommitSource(repository: repository, commit: revision, root: root)),
            let name = stable.target(target)?.executor, let manifest = stable.executors[name],
            let executor = try? executors.makeExecutor(for: manifest, revision: revision.hex)
        else { return fallback }
        return executor
    }

    /// An event about a step of `rollout` on `target`.
    func stepEvent(
        _ kind: Event.Kind, _ target: TargetID, _ rollout: Rollout, at time: Date, _ message: String,
        details: [String: JSONValue]? = nil
    ) -> Event {
        Event(
            time: time, kind: kind, target: target, revision: rollout.revision, version: rollout.version,
            message: message, details: details.map(JSONValue.object))
    }

    /// An event about the deployment `rollout` as a whole (started, succeeded, failed, superseded).
    func deploymentEvent(
        _ kind: Event.Kind, _ target: TargetID, _ rollout: Rollout, at time: Date, _ message: String,
        details: [String: JSONValue]? = nil
    ) -> Event {
        Event(
            time: time, kind: kind, target: target, revision: rollout.revision, version: rollout.version,
            previousVersion: rollout.previousVersion, classification: rollout.classification, message: message,
            details: details.map(JSONValue.object))
    }

    /// Writes a target's state with one event about its step (and the action record it finished), atomically.
    func commitStep(
        _ state: LiveTarget, _ kind: Event.Kind, _ target: TargetID, _ rollout: Rollout, at time: Date,
        _ message: String, details: [String: JSONValue]? = nil, actions: [ActionRecord] = []
    ) async throws {
        try await journal.commit(
            StateWrite(
                targets: [state], events: [stepEvent(kind, target, rollout, at: time, message, details: details)],
                actions: actions))
    }
}
