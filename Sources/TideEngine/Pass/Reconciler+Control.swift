import Foundation
import TideExecutors
import TideGit
import TideManifest
public import TideState

/// What a person can do to a rollout, with the meaning kubectl-argo-rollouts gives these words.
public enum RolloutControl: Sendable, Equatable {
    /// Hold the rollout where it is.
    case pause
    /// Let a paused rollout go on.
    case resume
    /// Go past the current pause (`full`: skip every remaining weight and pause, and promote).
    case promote(full: Bool)
    /// Send all traffic back to stable now; the version is held like a failed one.
    case abort
    /// Forget that the desired version failed here, so the next pass tries it again.
    case retry
}

extension Reconciler {
    /// One sentence on what a target runs and why, for answers that refuse a control.
    static func describe(_ state: LiveTarget) -> String {
        if state.phase == .rollingBack, let rollout = state.rollout, let rolling = rollout.rollingBack {
            var words =
                "it is rolling back from \(rollout.version) to \(rollout.previousVersion ?? "-") (\(rolling.reason))"
            if let error = rolling.lastError {
                words += "; attempt \(rolling.attempts) failed: \(error)"
                words += rolling.nextAttemptAt.map { "; tried again at \(GateEvaluator.format($0))" } ?? ""
            }
            return words + ". tide retry \(state.id.service) --env \(state.id.environment) tries the rollback now"
        }
        var words = "it runs \(state.version ?? "nothing") (\(state.phase.rawValue))"
        if let failed = state.failed, state.phase == .failed || state.phase == .rolledBack {
            words += "; \(failed.version) failed: \(failed.message)"
        }
        if let waiting = state.waiting { words += "; \(waiting)" }
        return words
    }
}

/// Why a control cannot be applied.
public struct ControlError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}

extension Reconciler {
    /// Applies a control to a target under the state lock (shared with a pass this process runs) and holding the
    /// target's turn: a rollout of it under way yields at its next step; returns what happened, in words.
    public func control(
        _ control: RolloutControl, service: String, environment: String, by actor: Actor
    ) async throws -> String {
        let id = TargetID(service: service, environment: environment)
        return try await lease.run(timeout: 60) {
            try await targetLocks.with(id, operator: true) {
                try await controlLocked(control, id: id, by: actor)
            }
        }
    }

    /// What a control acts on: the target's record, when, by whom.
    struct ControlContext {
        var id: TargetID
        var state: LiveTarget
        var now: Date
        var actor: Actor

        /// An event of the control, naming who did it.
        func event(_ kind: Event.Kind, _ message: String) -> Event {
            Event(
                time: now, kind: kind, target: id, revision: state.rollout?.revision, version: state.rollout?.version,
                message: "\(message) (by \(actor.description)" + (actor.comment.map { ": \($0)" } ?? "") + ")",
                details: .object(actor.details))
        }
    }

    private func controlLocked(_ control: RolloutControl, id: TargetID, by actor: Actor) async throws -> String {
        guard let state = try await store.liveTarget(id) else {
            throw ControlError(description: "\(id) runs nothing yet")
        }
        let context = ControlContext(id: id, state: state, now: clock.now(), actor: actor)
        switch control {
        case .retry where state.phase == .rollingBack, .abort where state.phase == .rollingBack:
            return try await rollBackAgain(context, aborting: control == .abort)
        case .retry:
            return try await retryFailed(context)
        case .abort:
            return try await abort(context)
        case .promote(full: true) where state.phase == .rollingBack:
            return try await clearRollbackAndPromote(context)
        case .pause, .resume, .promote:
            return try await steer(context, control)
        }
    }

    /// `retry` or `abort` of a target rolling back: try the rollback again now.
    private func rollBackAgain(_ context: ControlContext, aborting: Bool) async throws -> String {
        var state = context.state
        let id = context.id
        let now = context.now
        func event(_ kind: Event.Kind, _ message: String) -> Event { context.event(kind, message) }
        // Already going back to stable: "try the rollback again now".
        guard var rollout = state.rollout, var rolling = rollout.rollingBack else {
            throw ControlError(
                description: "\(id) is rolling back with no rollout recorded; " + Self.describe(state))
        }
        rolling.nextAttemptAt = nil
        rollout.rollingBack = rolling
        state.rollout = rollout
        state.updatedAt = now
        let kind: Event.Kind = aborting ? .rolloutAborted : .rolloutRetried
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [event(kind, "the rollback to \(rollout.previousVersion ?? "-") tried again now")]))
        let desired = try await resolve(record: false).desired
        let (outcome, succeeded) = try await rollouts.attemptRollback(state: state, desired: desired, fallback: nil)
        guard succeeded else { throw ControlError(description: outcome.message ?? "\(id): the rollback failed") }
        return "\(id): \(outcome.message ?? "rolled back")"
    }

    /// `retry` of a failed version: the next pass tries it again, while git still asks for it.
    private func retryFailed(_ context: ControlContext) async throws -> String {
        var state = context.state
        let id = context.id
        let now = context.now
        func event(_ kind: Event.Kind, _ message: String) -> Event { context.event(kind, message) }
        guard let failed = state.failed, state.phase == .failed || state.phase == .rolledBack else {
            throw ControlError(description: "\(id) has no failed version to retry; " + Self.describe(state))
        }
        // Retry means "try what git asks for again": when git no longer asks for the failed version (an abort
        // or a rollback wrote a pin or a revert), there is nothing to retry, and saying so beats a promise
        // that the next pass would not keep.
        if let wanted = try await resolve(record: false).desired?.target(id),
            wanted.version != failed.version || wanted.configDigest != failed.configDigest
        {
            throw ControlError(
                description: "\(id): git asks for \(wanted.version) now, not the failed \(failed.version), so "
                    + "there is nothing to retry (\(Self.describe(state))). To try \(failed.version) again, "
                    + "commit it: revert the commit that took it back, or set the version")
        }
        state.failed = nil
        // A recreate that failed past its deploy runs the failed version itself: it must be rolled out again.
        let runsFailed = state.version == failed.version && state.configDigest == failed.configDigest
        state.phase = state.version == nil || runsFailed ? .pending : .healthy
        state.updatedAt = now
        try await journal.commit(
            StateWrite(targets: [state], events: [event(.rolloutRetried, "retry \(failed.version)")]))
        return "\(id): \(failed.version) will be tried again at the next pass (tide reconcile runs one now)"
    }

    /// `abort` of a rollout in progress, before it is promoted: back to stable now.
    private func abort(_ context: ControlContext) async throws -> String {
        let state = context.state
        let id = context.id
        let now = context.now
        let who = context.actor.description
        let actor = context.actor
        func event(_ kind: Event.Kind, _ message: String) -> Event { context.event(kind, message) }
        guard let rollout = state.rollout, state.phase == .progressing else {
            throw ControlError(description: "\(id) has no rollout in progress to abort; " + Self.describe(state))
        }
        guard rollout.previousVersion != nil else {
            throw ControlError(description: "\(id) has no stable version to go back to (first deployment)")
        }
        let desired = try await resolve(record: false).desired
        let plan = rollout.steps(declared: desired?.services[id.service]?.strategy)
        if RolloutMachine.isPromoted(rollout, plan: plan) {
            throw ControlError(
                description: "\(id): \(rollout.version) was promoted already (it serves all the traffic); going "
                    + "back is a rollback now: tide rollback \(id.service) --env \(id.environment)")
        }
        let message = "aborted by \(who)"
        var write = StateWrite(events: [
            event(.rolloutAborted, "abort \(rollout.version) at weight \(rollout.weight)")
        ])
        if let desired {
            write.deployments = [
                rollouts.failedDeployment(target: id, rollout: rollout, desired: desired, at: now, message: message)
            ]
        }
        let (outcome, succeeded) = try await rollouts.startRollingBack(
            .abort, target: id, rollout: rollout, state: state, reason: message, actor: actor,
            writeBack: desired?.services[id.service]?.rollback.writeBack == .revert, desired: desired,
            fallback: nil, write: write)
        guard succeeded else { throw ControlError(description: "\(id): \(outcome.message ?? message)") }
        return "\(id): \(outcome.message ?? message)"
    }

    /// `promote --full` on an aborted or failed rollout rolling back (as in Argo Rollouts): the abort is cleared
    /// and the version promoted.
    private func clearRollbackAndPromote(_ context: ControlContext) async throws -> String {
        var state = context.state
        let id = context.id
        let now = context.now
        func event(_ kind: Event.Kind, _ message: String) -> Event { context.event(kind, message) }
        // As in Argo Rollouts: promote --full on an aborted rollout clears the abort and promotes.
        guard var rollout = state.rollout, let rolling = rollout.rollingBack, rolling.cause != .preemption else {
            throw ControlError(
                description: "\(id) is not rolling back an abort or a failure; " + Self.describe(state))
        }
        rollout.rollingBack = nil
        rollout.full = true
        rollout.paused = false
        rollout.heldBy = nil
        state.rollout = rollout
        state.phase = .progressing
        state.failed = nil
        state.updatedAt = now
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    event(
                        .rolloutPromoted,
                        "the rollback (\(rolling.reason)) cleared; \(rollout.version) promoted fully")
                ]))
        return "\(id): the rollback is cleared; \(rollout.version) is promoted fully at the next pass"
    }

    /// `pause`, `resume` and `promote` of a rollout in progress.
    private func steer(_ context: ControlContext, _ control: RolloutControl) async throws -> String {
        var state = context.state
        let id = context.id
        let now = context.now
        let who = context.actor.description
        func event(_ kind: Event.Kind, _ message: String) -> Event { context.event(kind, message) }
        guard var rollout = state.rollout, state.phase == .progressing else {
            throw ControlError(description: "\(id) has no rollout in progress; " + Self.describe(state))
        }
        var kind = Event.Kind.rolloutPaused
        var words = ""
        let declared = try await resolve(record: false).desired?.services[id.service]?.strategy
        let plan = rollout.steps(declared: declared)
        let label = plan.label(rollout.step)
        switch control {
        case .pause:
            rollout.paused = true
            rollout.heldBy = who
            words = "paused at \(label), weight \(rollout.weight)"
        case .resume:
            guard rollout.paused else { throw ControlError(description: "\(id) is not paused") }
            rollout.paused = false
            rollout.heldBy = nil
            kind = .rolloutResumed
            words = "resumed"
        case .promote(let full):
            kind = .rolloutPromoted
            let pausedForPerson = rollout.paused && rollout.heldBy == nil
            rollout.paused = false
            rollout.heldBy = nil
            if full {
                rollout.full = true
                words = "promoted fully: remaining weights and pauses skipped"
            } else {
                // Past a pause, or (Argo Rollouts #261) past an analysis a person was asked to decide on.
                let step = rollout.step < plan.steps.count ? plan.steps[rollout.step].step : nil
                let decidable: Bool =
                    switch step {
                    case .pause?: true
                    case .analysis?: pausedForPerson
                    default: false
                    }
                guard decidable else {
                    throw ControlError(
                        description: "\(id) is not at a pause or an analysis waiting for a person (it is at "
                            + "\(label)); promote --full skips the rest")
                }
                if case .analysis? = step { rollout.analysis = nil }
                rollout.step += 1
                rollout.stepStartedAt = now
                words = "promoted past \(label)"
            }
        default:
            break
        }
        state.rollout = rollout
        state.updatedAt = now
        try await journal.commit(StateWrite(targets: [state], events: [event(kind, words)]))
        return "\(id): \(words)"
    }
}
