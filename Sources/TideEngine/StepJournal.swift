import Foundation
import TideExecutors
import TideManifest
public import TideState

/// Every executor action is recorded here before it runs and after it ends, under its typed `ActionID`: the one
/// place that writes action records, so a crash between the two leaves a `started` record that the next pass
/// re-runs with the same id.
///
/// Writes of concurrent targets are grouped (group commit): while one transaction is being written, what other
/// targets write waits and goes out together in the next one. Each step's writes stay in one transaction, in
/// order, and `commit` returns only once they are durable — so 1,000 canaries advancing at once cost a few
/// transactions, not 1,000, with every step still persisted.
public actor StepJournal {
    private let store: any StateStore
    private var pending: [(write: StateWrite, done: CheckedContinuation<Void, any Error>)] = []
    private var writing = false
    /// Transactions written, and writes they carried (for tide-bench).
    public private(set) var transactions = 0
    public private(set) var writes = 0

    public init(store: any StateStore) {
        self.store = store
    }

    /// Writes `write` in one transaction (possibly shared with other targets' writes) and returns once it is
    /// durable.
    public func commit(_ write: StateWrite) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            pending.append((write, done))
            if !writing {
                writing = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            transactions += 1
            writes += batch.count
            do {
                try await store.apply(StateWrite(merging: batch.map(\.write)))
                for entry in batch { entry.done.resume() }
            } catch {
                // One bad write must not fail the others: write them one by one.
                for entry in batch {
                    do {
                        try await store.apply(entry.write)
                        entry.done.resume()
                    } catch {
                        entry.done.resume(throwing: error)
                    }
                }
            }
        }
        writing = false
    }
}

extension StateWrite {
    /// Several writes as one, in order (a later write of the same target wins).
    public init(merging writes: [StateWrite]) {
        self.init()
        var order: [TargetID] = []
        var latest: [TargetID: LiveTarget] = [:]
        for write in writes {
            for target in write.targets {
                if latest[target.id] == nil { order.append(target.id) }
                latest[target.id] = target
            }
            removedTargets += write.removedTargets
            events += write.events
            actions += write.actions
            deployments += write.deployments
            executorHealth += write.executorHealth
            repositoryStatus = write.repositoryStatus ?? repositoryStatus
            sourceStatus = write.sourceStatus ?? sourceStatus
            suspensions += write.suspensions
            liftedSuspensions += write.liftedSuspensions
        }
        targets = order.compactMap { latest[$0] }
    }
}

/// One executor action as the journal saw it.
struct JournaledAction {
    var result: ActionResult
    /// Tries it took (1 + retries of transient failures).
    var attempts: Int
    /// The finished record, for the caller to write with the step's outcome (target, events) in one transaction.
    var record: ActionRecord
    var startedAt: Date
    var finishedAt: Date
}

extension StepJournal {
    /// How long one action's retries may wait in a pass, all together.
    static let longestRetryWaitInPass = 30.0
}

extension EngineCollaborator {
    /// Runs one executor action: records it started (with `announce`, in the same transaction), performs it with
    /// the id `id`, and returns the finished record. With `finish`, the finished record is written here too;
    /// without, the caller writes it together with what the step changed.
    ///
    /// A transient failure (`ActionResult.isTransient`) is retried `retry.limit` times with the same id, waiting
    /// `retry.backoff`, then `factor` times longer each time; what is returned is the last try's result. With
    /// `breaker`, the outcome counts for that executor's circuit breaker.
    func perform(
        _ request: ActionRequest, id: ActionID, executor: any Executor, retry: RetryPolicy = RetryPolicy(limit: 0),
        breaker: (name: String, policy: CircuitBreakerPolicy)? = nil, announce: StateWrite = StateWrite(),
        finish: Bool = false
    ) async throws -> JournaledAction {
        var request = request
        request.actionID = id.description
        let startedAt = clock.now()
        var started = announce
        started.actions.append(
            ActionRecord(
                id: id.description, target: id.target, action: request.action.rawValue, status: .started,
                startedAt: startedAt))
        try await journal.commit(started)
        var result = await executor.perform(request)
        // Tide is shutting down and stopped the executor: the step stays recorded as started (interrupted), so the
        // next start runs it again under the same action id rather than taking the kill for a failure.
        try Task.checkCancellation()
        var attempts = 1
        var waited = 0.0
        // Retried here only while the waits stay short and the failure was quick: a timeout already took the
        // action's whole timeout, and long backoffs would hold the pass (and the state lock). Those are left to a
        // later pass (see `waitAfterTransientFailure`).
        while !result.succeeded, result.isTransient, !result.isTimeout, attempts <= retry.limit,
            waited + retry.delay(before: attempts) <= StepJournal.longestRetryWaitInPass
        {
            await clock.sleep(seconds: retry.delay(before: attempts))
            waited += retry.delay(before: attempts)
            attempts += 1
            result = await executor.perform(request)
            try Task.checkCancellation()
        }
        let finishedAt = clock.now()
        let record = ActionRecord(
            id: id.description, target: id.target, action: request.action.rawValue,
            status: result.succeeded ? .succeeded : .failed, startedAt: startedAt, finishedAt: finishedAt,
            message: result.succeeded ? nil : result.summary)
        // The breaker counts only failures that say the executor (or what it talks to) is down — transient ones —
        // never a candidate's own verdict: an answer, even a "no", means the executor works. (A health check that
        // times out is the candidate failing it.)
        let executorDown =
            !result.succeeded && result.isTransient && !(request.action == .health && result.isTimeout)
        if let breaker,
            let changed = await breakers.record(
                breaker.name, succeeded: !executorDown, failure: "\(request.action.rawValue) \(result.summary)",
                policy: breaker.policy, now: finishedAt)
        {
            try await journal.commit(StateWrite(executorHealth: [changed]))
        }
        if finish { try await journal.commit(StateWrite(actions: [record])) }
        return JournaledAction(
            result: result, attempts: attempts, record: record, startedAt: startedAt, finishedAt: finishedAt)
    }
}
