import Foundation
import TideExecutors
import TideManifest
import TideState

extension RolloutRunner {
    /// An action still failed transiently after its retries: the step is not failed and nothing is rolled back.
    /// The target waits — each time longer (the retry backoff continued, at most 10 minutes) — and a later pass
    /// tries the same step again with the same action id; the progress deadline ends the wait if it never passes.
    func waitAfterTransientFailure(
        _ action: ExecutorAction, done: JournaledAction, details: [String: JSONValue], retry: RetryPolicy,
        target: TargetID, label: String, rollout: inout Rollout, state: inout LiveTarget, calls: Int,
        background: Date?
    ) async throws -> TargetOutcome {
        let failures = (rollout.transientFailures ?? 0) + 1
        let wait = min(600, max(1, retry.delay(before: retry.limit + failures)))
        let due = done.finishedAt.addingTimeInterval(wait)
        let reason = "\(action.rawValue) \(done.result.summary)"
        rollout.transientFailures = failures
        if rollout.stalledSince == nil { rollout.stalledSince = done.startedAt }
        rollout.retryAt = due
        rollout.retryReason = reason
        state.rollout = rollout
        state.updatedAt = done.finishedAt
        var details = details
        details["outcome"] = .string(done.result.summary)
        details["retryAt"] = .string(GateEvaluator.format(due))
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    Event(
                        time: done.finishedAt, kind: .stepRetrying, target: target, revision: rollout.revision,
                        version: rollout.version,
                        message: "\(label): \(reason) (\(done.attempts) tries, transient); tries again at "
                            + GateEvaluator.format(due),
                        details: .object(details))
                ],
                actions: [done.record]))
        return try await progressing(
            background: background, target, rollout, state: &state,
            message: "\(label): \(reason); tries again at \(GateEvaluator.format(due))", executorCalls: calls,
            nextDue: due)
    }
}
