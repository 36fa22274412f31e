import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

extension Reconciler {
    /// A new attempt's identity in action ids: eight hex digits.
    static func newAttempt() -> String {
        String(UInt32.random(in: 0...UInt32.max), radix: 16).leftPadded(to: 8)
    }

    /// Ends a rollout that a newer desired state pre-empts: the executor gets a `rollback` for the pre-empted
    /// candidate (traffic back to stable, `TIDE_PREVIOUS_VERSION` = the candidate) — so it can clean up what it
    /// started — and a `deployment.superseded` event ends it in the history. Returns the target's outcome when the
    /// rollback failed (the new rollout does not start; the next pass tries again), nil when the way is clear.
    func preempt(
        _ old: Rollout, target: DesiredTarget, state: inout LiveTarget, executor: any Executor
    ) async throws -> TargetOutcome? {
        var calls = 0
        if let stable = old.previousVersion {
            var request = ActionRequest(
                action: .rollback, service: target.id.service, environment: target.id.environment, version: stable,
                previousVersion: old.version, weight: 100, revision: (old.stableRevision ?? old.revision).hex,
                actionID: "", config: old.stableConfig ?? old.config)
            request.strategy = old.strategy.rawValue
            request.identifySides(undoing: old)
            let done = try await perform(
                request, id: ActionID(target.id, old, step: .preemptedRollback),
                executor: stableExecutor(of: old, target: target.id, fallback: executor), retry: RetryPolicy())
            let result = done.result
            calls += 1
            try await journal.commit(
                StateWrite(
                    events: result.succeeded
                        ? []
                        : [
                            Event(
                                time: done.finishedAt, kind: .stepFailed, target: target.id, revision: old.revision,
                                version: stable,
                                message: "could not send traffic back to \(stable) before \(target.version): "
                                    + "rollback \(result.summary); \(old.version) is still rolling out")
                        ],
                    actions: [done.record]))
            guard result.succeeded else {
                return TargetOutcome(
                    target: target.id, result: .failed, fromVersion: old.previousVersion, toVersion: target.version,
                    classification: nil,
                    message: "pre-empting \(old.version): rollback to \(stable) \(result.summary)", executorCalls: calls
                )
            }
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
                        "\(old.version) superseded by \(target.version) before it finished (weight \(old.weight)%)"
                            + (old.previousVersion.map { "; traffic back to \($0)" } ?? ""))
                ]))
        return nil
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
