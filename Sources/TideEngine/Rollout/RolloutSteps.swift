import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

/// One target's rollout: start it (`begin`), then run its frozen steps through `RolloutMachine` — each executor
/// action through the step journal — until it completes, waits, or fails (and rolls back). Each step ends in one
/// `StepResult`, which `finish` writes.
extension RolloutRunner {
    func roll(
        _ action: PlannedAction, target: DesiredTarget, live: LiveTarget?, desired: DesiredState, revision: ObjectID
    ) async throws -> TargetOutcome {
        var run: RolloutRun
        switch try await start(action, target: target, live: live, desired: desired, revision: revision) {
        case .started(let started): run = started
        case .ended(let outcome): return outcome
        }
        while true {
            let result = try await nextStep(&run)
            if let outcome = try await finish(result, &run) { return outcome }
        }
    }

    /// How starting a run went.
    enum RunStart {
        case started(RolloutRun)
        case ended(TargetOutcome)
    }

    /// The rollout under way (a resume), or a new one begun; its plan frozen.
    private func start(
        _ action: PlannedAction, target: DesiredTarget, live: LiveTarget?, desired: DesiredState, revision: ObjectID
    ) async throws -> RunStart {
        let now = clock.now()
        guard let executorManifest = desired.executors[target.executor] else {
            throw EngineError.executorMissing(target: target.id, executor: target.executor)
        }
        // A rollout under way runs its own revision's files (an interrupted step runs again as it started).
        let executorRevision = action.kind == .resume ? (live?.rollout?.revision ?? revision) : revision
        let executor = try executors.makeExecutor(for: executorManifest, revision: executorRevision.hex)
        var state = live ?? LiveTarget(id: target.id, executor: target.executor, phase: .pending, updatedAt: now)
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
            case .ended(let outcome): return .ended(outcome)
            }
        }
        let plan = rollout.steps(declared: desired.services[target.id.service]?.strategy)
        // A rollout started before plans were kept gets its plan now (written with its next step), so its
        // rollback and measurements say the strategy it runs.
        if rollout.plan == nil { rollout.plan = plan }
        return .started(
            RolloutRun(
                target: target, desired: desired, executor: executor, plan: plan,
                deadline: desired.progressDeadline(for: target.id.service), rollout: rollout, state: state))
    }

    /// The next step: an operator's control first, the progress deadline, the background analysis, then what
    /// `RolloutMachine` says comes next.
    private func nextStep(_ run: inout RolloutRun) async throws -> StepResult {
        if targetLocks.operatorWaits(run.id) {
            // An operator's control of this target comes before its next step: the rollout goes on after it.
            run.state.rollout = run.rollout
            try await journal.commit(StateWrite(targets: [run.state]))
            return .recorded(
                TargetOutcome(
                    target: run.id, result: .progressing, fromVersion: run.rollout.previousVersion,
                    toVersion: run.rollout.version, classification: run.rollout.classification,
                    message: "\(run.label): an operator's request comes first", executorCalls: run.calls,
                    nextDue: clock.now()))
        }
        if run.deadline.abort, stalled(run) {
            return .fail(
                message: "no progress for \(ManifestDuration.format(run.deadline.seconds)) at \(run.label) "
                    + "(progressDeadline)" + (run.rollout.retryReason.map { ": \($0)" } ?? ""),
                details: ["progressDeadlineSeconds": .double(run.deadline.seconds)], action: nil)
        }
        if RolloutMachine.measuresInBackground(run.rollout, plan: run.plan), let name = run.plan.backgroundAnalysis {
            // Beside the steps, from the candidate's first check to promotion — also while the rollout waits for a
            // person, whom a failing background analysis overrules.
            let (verdict, measured) = try await analyse(
                name, step: -1, rollout: &run.rollout, target: run.target, desired: run.desired, background: true)
            recordMeasured(measured, &run)
            let result = try await result(of: verdict, analysis: name, background: true, &run)
            guard case .advanced = result else { return result }
            if measured > 0 { try await journal.commit(StateWrite(targets: [run.state])) }
        }
        let step = run.rollout.step
        let label = run.label
        switch RolloutMachine.next(run.rollout, plan: run.plan, now: clock.now(), promoteCommand: run.promoteCommand) {
        case .complete:
            return .complete
        case .held(let message):
            return .wait(until: nil, message: message)
        case .wait(let due, let message):
            return .wait(until: due, message: message)
        case .skip(let words):
            let now = clock.now()
            run.rollout = RolloutMachine.advanced(run.rollout, plan: run.plan, at: now)
            run.state.rollout = run.rollout
            run.state.updatedAt = now
            guard case .pause = run.plan.steps[step].step else { return .advanced }
            try await commitStep(run.state, .stepSucceeded, run.id, run.rollout, at: now, "\(label): \(words)")
            return .advanced
        case .analyse(let name):
            let (verdict, measured) = try await analyse(
                name, step: step, rollout: &run.rollout, target: run.target, desired: run.desired)
            recordMeasured(measured, &run)
            return try await result(of: verdict, analysis: name, background: false, &run)
        case .act(let action, let weight, let traffic):
            return try await act(action, weight: weight, traffic: traffic, &run)
        }
    }

    /// After an analysis measured: its calls counted, the rollout (with the measurements) on the target.
    private func recordMeasured(_ measured: Int, _ run: inout RolloutRun) {
        run.calls += measured
        run.state.rollout = run.rollout
        run.state.updatedAt = clock.now()
    }

    /// Whether the rollout has made no progress for its progress deadline.
    private func stalled(_ run: RolloutRun) -> Bool {
        RolloutMachine.stalled(run.rollout, plan: run.plan, now: clock.now(), deadline: run.deadline.seconds)
    }

    /// What a rollout that keeps trying past its progress deadline says first ("" while it is not stuck).
    private func stuck(_ run: RolloutRun) -> String {
        guard stalled(run) else { return "" }
        return "stuck: no progress for \(ManifestDuration.format(run.deadline.seconds)) (progressDeadline; "
            + "progressDeadlineAbort is false, so it keeps trying; tide abort takes it back); "
    }

    /// An executor action of the rollout — unless something holds it (a background analysis that has not measured
    /// everything before promotion, a backoff, an open circuit breaker).
    private func act(
        _ action: ExecutorAction, weight: Int, traffic: JSONValue?, _ run: inout RolloutRun
    ) async throws -> StepResult {
        if let held = try await holdBeforeActing(run) { return held }
        let target = run.target
        var request = ActionRequest(
            action: action, service: target.id.service, environment: target.id.environment,
            version: run.rollout.version, previousVersion: run.rollout.previousVersion, weight: weight,
            revision: run.rollout.revision.hex, actionID: "", config: run.rollout.config)
        request.strategy = run.plan.strategy.rawValue
        request.traffic = traffic
        request.identifySides(of: run.rollout)
        let actionID = ActionID(target.id, run.rollout, step: .rollout(index: run.rollout.step, action))
        let retry =
            await breakers.inTrial(target.executor) ? RetryPolicy(limit: 0) : run.desired.retry(for: target.id.service)
        let done = try await perform(
            request, id: actionID, executor: run.executor, retry: retry,
            breaker: (target.executor, run.desired.circuitBreaker(for: target.executor)),
            announce: StateWrite(events: [
                stepEvent(
                    .stepStarted, target.id, run.rollout, at: clock.now(), run.label,
                    details: ["actionId": .string(actionID.description)])
            ]))
        run.calls += 1
        return try await outcome(of: done, action, id: actionID, retry: retry, &run)
    }

    /// What holds an action back, as the step's result (nil: nothing does).
    private func holdBeforeActing(_ run: RolloutRun) async throws -> StepResult? {
        let label = run.label
        if RolloutMachine.promotes(run.rollout, plan: run.plan), !run.rollout.full,
            let background = run.plan.backgroundAnalysis,
            let unproven = unprovenMetrics(background, run.rollout.background, desired: run.desired)
        {
            // No data is never a success: the background analysis must have measured every metric successfully
            // once before the candidate gets all the traffic.
            guard run.backgroundDue != nil else {
                return .pauseForPerson(
                    what: "background analysis \(background)",
                    summary: "no successful measurement of \(unproven) before promotion")
            }
            return .wait(
                until: nil,
                message: "\(label): waits for background analysis \(background) to measure \(unproven) "
                    + "successfully before promotion")
        }
        if let due = run.rollout.retryAt, clock.now() < due {
            // Backing off after a transient failure: not before the announced time.
            return .wait(
                until: due,
                message: "\(stuck(run))\(label): \(run.rollout.retryReason ?? "failed transiently"); tries again at "
                    + GateEvaluator.format(due))
        }
        if let open = await breakers.refusal(for: run.target.executor, now: clock.now()) {
            return .wait(until: open.until, message: "\(label): waits: \(open)")
        }
        return nil
    }

    /// What an action's result means: advanced, a transient wait, or a failure.
    private func outcome(
        of done: JournaledAction, _ action: ExecutorAction, id actionID: ActionID, retry: RetryPolicy,
        _ run: inout RolloutRun
    ) async throws -> StepResult {
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
                action, done: done, details: details, retry: retry, target: run.id, label: run.label,
                rollout: &run.rollout, state: &run.state, calls: run.calls, background: run.backgroundDue)
            if stalled(run) { outcome.message = stuck(run) + (outcome.message ?? "") }
            return .recorded(outcome)
        }
        guard result.succeeded else {
            details["outcome"] = .string(result.summary)
            return .fail(
                message: "\(action.rawValue) of \(run.rollout.version) \(result.summary)", details: details,
                action: done.record)
        }
        run.rollout = RolloutMachine.advanced(run.rollout, plan: run.plan, at: done.finishedAt)
        run.state.rollout = run.rollout
        run.state.updatedAt = done.finishedAt
        try await commitStep(
            run.state, .stepSucceeded, run.id, run.rollout, at: done.finishedAt, "\(action.rawValue) succeeded",
            details: details, actions: [done.record])
        return .advanced
    }
}
