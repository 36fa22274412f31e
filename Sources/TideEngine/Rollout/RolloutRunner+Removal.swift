import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

extension RolloutRunner {

    func remove(
        _ action: PlannedAction, live: LiveTarget, desired: DesiredState, revision: ObjectID
    ) async throws -> TargetOutcome {
        if live.version == nil && live.rollout == nil {
            // Never deployed (it only waited at a gate): nothing to tell the executor.
            try await journal.commit(StateWrite(removedTargets: [live.id]))
            return TargetOutcome(
                target: live.id, result: .removed, fromVersion: nil, toVersion: nil, classification: .removal,
                message: "never deployed", executorCalls: 0)
        }
        guard let manifest = desired.executors[live.executor] else {
            let message =
                "cannot remove: executor '\(live.executor)' is no longer defined; "
                + "keep its Executor manifest until its targets are removed"
            return TargetOutcome(
                target: live.id, result: .failed, fromVersion: live.version, toVersion: nil,
                classification: .removal, message: message, executorCalls: 0)
        }
        let executor = try executors.makeExecutor(for: manifest, revision: revision.hex)
        let id = ActionID(target: live.id, revision: revision, attempt: "", step: .remove)
        let actionID = id.description
        var state = live
        state.phase = .removing
        state.updatedAt = clock.now()
        var request = ActionRequest(
            action: .remove, service: live.id.service, environment: live.id.environment,
            version: live.version ?? "", previousVersion: nil, weight: 0, revision: revision.hex,
            actionID: actionID, config: .object([:]))
        request.strategy = live.rollout?.strategy.rawValue
        let done = try await perform(request, id: id, executor: executor, announce: StateWrite(targets: [state]))
        let result = done.result
        let finishedAt = done.finishedAt
        guard result.succeeded else {
            let message = "remove \(result.summary)"
            state.phase = .failed
            state.updatedAt = finishedAt
            try await journal.commit(
                StateWrite(
                    targets: [state],
                    events: [
                        Event(
                            time: finishedAt, kind: .stepFailed, target: live.id, revision: revision,
                            version: live.version, message: message,
                            details: .object(["actionId": .string(actionID), "stderr": .string(result.standardError)]))
                    ],
                    actions: [done.record]))
            return TargetOutcome(
                target: live.id, result: .failed, fromVersion: live.version, toVersion: nil,
                classification: .removal, message: message, executorCalls: 1)
        }
        try await journal.commit(
            StateWrite(
                removedTargets: [live.id],
                events: [
                    Event(
                        time: finishedAt, kind: .targetRemoved, target: live.id, revision: revision,
                        previousVersion: live.version, classification: .removal,
                        message: "removed (was \(live.version ?? "nothing"))")
                ],
                actions: [done.record]))
        return TargetOutcome(
            target: live.id, result: .removed, fromVersion: live.version, toVersion: nil, classification: .removal,
            message: action.reason, executorCalls: 1)
    }
}
