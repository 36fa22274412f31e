import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

/// Candidates an abort or a failure took the traffic from but kept running (`abortScaleDownDelay`, as in Argo
/// Rollouts): the executor is told `scale-down` — `version` stable, `previousVersion` the candidate that may go —
/// when the delay ends, and before the target's next rollout or its removal starts (so a kept candidate never
/// outlives the target's next change).
///
/// What must never happen: a kept candidate forgotten (the record stays until a scale-down succeeds; a failed one
/// is tried again with the rollbacks' backoff); a scale-down before stable serves (the record is written only when
/// the rollback finished); a scale-down of what serves (it names the candidate, never stable).
extension RolloutRunner {
    /// Runs the scale-downs that are due before the pass dispatches `plan`; returns the live targets as they are
    /// afterwards, and when each scale-down still waiting is due.
    func scaleDownKeptCandidates(
        plan: Plan, live: [LiveTarget], desired: DesiredState, revision: ObjectID
    ) async throws -> (changed: [LiveTarget], due: [TargetID: Date]) {
        guard live.contains(where: { $0.keptCandidate != nil }) else { return ([], [:]) }
        let starting = Set(plan.actions.filter { [.deploy, .remove].contains($0.kind) }.map(\.target))
        var changed: [LiveTarget] = []
        var due: [TargetID: Date] = [:]
        for target in live {
            guard let kept = target.keptCandidate else { continue }
            let now = clock.now()
            let timeUp = kept.scaleDownAt.map { $0 <= now } ?? false
            guard timeUp || starting.contains(target.id) else {
                if let at = kept.scaleDownAt { due[target.id] = at }
                continue
            }
            // Under the target's turn, on its record as it is then (an operator may have acted on it meanwhile).
            let after = try await targetLocks.with(target.id) {
                guard let current = try await store.liveTarget(target.id), current.keptCandidate == kept else {
                    return target
                }
                return try await scaleDown(kept, of: current, desired: desired, revision: revision)
            }
            changed.append(after)
            if let waiting = after.keptCandidate?.scaleDownAt { due[target.id] = waiting }
        }
        return (changed, due)
    }

    /// One scale-down of `kept`: on success the record goes; on failure it stays, due again after a backoff.
    private func scaleDown(
        _ kept: KeptCandidate, of live: LiveTarget, desired: DesiredState, revision: ObjectID
    ) async throws -> LiveTarget {
        var state = live
        guard let manifest = desired.executors[live.executor] else {
            // Nothing can be told: kept until the executor is back in desired state (the status shows it).
            return state
        }
        let executor = try executors.makeExecutor(for: manifest, revision: revision.hex)
        var request = ActionRequest(
            action: .scaleDown, service: live.id.service, environment: live.id.environment,
            version: live.version ?? "", previousVersion: kept.version, weight: 100, revision: revision.hex,
            actionID: "", config: live.release?.config ?? desired.target(live.id)?.config ?? .object([:]))
        request.strategy = kept.strategy.rawValue
        request.configDigest = live.configDigest
        request.previousConfigDigest = kept.configDigest
        request.previousConfig = kept.config
        request.previousRevision = kept.revision.hex
        let id = ActionID(
            target: live.id, revision: kept.revision, attempt: kept.attempt ?? "", step: .keptCandidateScaleDown)
        let done = try await perform(request, id: id, executor: executor)
        let now = clock.now()
        if done.result.succeeded {
            state.keptCandidate = nil
            state.updatedAt = now
            try await journal.commit(
                StateWrite(
                    targets: [state],
                    events: [
                        Event(
                            time: now, kind: .candidateScaledDown, target: live.id, revision: kept.revision,
                            version: live.version, previousVersion: kept.version,
                            message: "scale-down of the aborted candidate \(kept.version)")
                    ], actions: [done.record]))
            return state
        }
        var failed = kept
        failed.attempts += 1
        failed.lastError = done.result.summary
        failed.scaleDownAt = now.addingTimeInterval(Self.rollbackRetryDelay(after: failed.attempts))
        state.keptCandidate = failed
        state.updatedAt = now
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    Event(
                        time: now, kind: .stepFailed, target: live.id, revision: kept.revision,
                        version: live.version, previousVersion: kept.version,
                        message: "scale-down of the aborted candidate \(kept.version) \(done.result.summary); tried "
                            + "again at \(GateEvaluator.format(failed.scaleDownAt ?? now))",
                        details: .object(["actionId": .string(id.description)]))
                ], actions: [done.record]))
        return state
    }
}
