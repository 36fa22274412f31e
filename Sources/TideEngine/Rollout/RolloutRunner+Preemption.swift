import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

extension RolloutRunner {
    /// A new attempt's identity in action ids: eight hex digits.
    static func newAttempt() -> String {
        String(UInt32.random(in: 0...UInt32.max), radix: 16).leftPadded(to: 8)
    }

    /// Ends a rollout that a newer desired state pre-empts, before the new one starts.
    ///
    /// - Not promoted yet: it is taken back to stable (`startRollingBack(.preemption)`) — the executor gets a
    ///   `rollback` for the pre-empted candidate (traffic back to stable, `TIDE_PREVIOUS_VERSION` = the candidate)
    ///   so it can clean up what it started — and a `deployment.superseded` event ends it in the history. When that
    ///   rollback fails, the target stays RollingBack (retried) and the new rollout waits: its outcome is returned.
    /// - Promoted already (the candidate serves; a blue-green waiting out `scaleDownDelay`): going back is no longer
    ///   the safe way out, so it is finished instead — its remaining scale-down runs, it completes as a deployment,
    ///   and the new rollout starts from it. Traffic never goes back to a version Tide has left.
    ///
    /// Returns nil when the way is clear (`state` is then what the target is).
    func preempt(
        _ old: Rollout, target: DesiredTarget, state: inout LiveTarget, executor: any Executor, desired: DesiredState
    ) async throws -> TargetOutcome? {
        let plan = old.steps(declared: desired.services[target.id.service]?.strategy)
        if RolloutMachine.isPromoted(old, plan: plan) {
            return try await finishPromoted(
                old, plan: plan, target: target, state: &state, executor: executor, desired: desired)
        }
        if old.previousVersion != nil {
            let (outcome, succeeded) = try await startRollingBack(
                .preemption, target: target.id, rollout: old, state: state,
                reason: "pre-empted by \(target.version) (\(target.configDigest.prefix(8)))", writeBack: false,
                desired: desired, fallback: executor)
            guard succeeded else { return outcome }
            state = try await store.liveTarget(target.id) ?? state
            return nil
        }
        let now = clock.now()
        state.rollout = nil
        state.phase = state.version == nil ? .pending : .healthy
        state.updatedAt = now
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    deploymentEvent(
                        .deploymentSuperseded, target.id, old, at: now,
                        "\(old.version) superseded by \(target.version) before it finished (weight \(old.weight)%)")
                ]))
        return nil
    }

    /// A promoted rollout that a newer desired state pre-empts: what is left of it after the promotion (a
    /// blue-green's `scale-down` of the old side) runs now, and it completes — the candidate is what serves.
    private func finishPromoted(
        _ old: Rollout, plan: RolloutPlan, target: DesiredTarget, state: inout LiveTarget, executor: any Executor,
        desired: DesiredState
    ) async throws -> TargetOutcome? {
        var rollout = old
        var calls = 0
        for index in old.step..<plan.steps.count {
            guard case .action(.scaleDown, let weight, let traffic) = plan.steps[index].step else { continue }
            var request = ActionRequest(
                action: .scaleDown, service: target.id.service, environment: target.id.environment,
                version: rollout.version, previousVersion: rollout.previousVersion, weight: weight,
                revision: rollout.revision.hex, actionID: "", config: rollout.config)
            request.strategy = plan.strategy.rawValue
            request.traffic = traffic
            request.identifySides(of: rollout)
            let done = try await perform(
                request, id: ActionID(target.id, rollout, step: .rollout(index: index, .scaleDown)),
                executor: executor, retry: desired.retry(for: target.id.service), finish: true)
            calls += 1
            guard done.result.succeeded else {
                // The candidate serves all the same; the old side stays up until a later pass scales it down.
                return TargetOutcome(
                    target: target.id, result: .progressing, fromVersion: old.previousVersion, toVersion: old.version,
                    classification: old.classification,
                    message: "\(old.version) was promoted; scaling \(old.previousVersion ?? "-") down before "
                        + "\(target.version) starts: \(done.result.summary)", executorCalls: calls,
                    nextDue: clock.now().addingTimeInterval(Self.rollbackRetryDelay(after: 1)))
            }
        }
        rollout.step = plan.steps.count
        rollout.reason = (rollout.reason.map { "\($0); " } ?? "") + "finished early: \(target.version) came"
        _ = try await complete(target: target, rollout: rollout, state: state, desired: desired, calls: calls)
        state = try await store.liveTarget(target.id) ?? state
        return nil
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
