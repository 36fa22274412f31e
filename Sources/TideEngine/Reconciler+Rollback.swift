import Foundation
import TideExecutors
public import TideGit
public import TideManifest
import TideState

extension Reconciler {
    /// Automatic rollback after a failed step: the executor's `rollback` action brings the stable version back and
    /// `health` checks it; the failed version stays held. With `writeBack: revert`, the commits that asked for the
    /// failed version are reverted in the config repo, so git says what runs.
    func rollBack(
        target: DesiredTarget, to stable: String, after rollout: Rollout, state failedState: LiveTarget,
        reason: String, spec: RollbackSpec, executor: any Executor, calls: Int
    ) async throws -> TargetOutcome {
        var state = failedState
        var calls = calls
        let base = "\(target.id.service).\(target.id.environment).\(rollout.revision.short)"
        var failure: String?
        for (action, step) in [(ExecutorAction.rollback, "rollback"), (.health, "rollback-health")] {
            let actionID = "\(base).\(step)"
            let startedAt = clock.now()
            try await store.apply(
                StateWrite(actions: [
                    ActionRecord(
                        id: actionID, target: target.id, action: action.rawValue, status: .started,
                        startedAt: startedAt)
                ]))
            let result = await executor.perform(
                ActionRequest(
                    action: action, service: target.id.service, environment: target.id.environment, version: stable,
                    previousVersion: rollout.version, weight: 100, revision: rollout.revision.hex,
                    actionID: actionID, config: rollout.config))
            calls += 1
            try await store.apply(
                StateWrite(actions: [
                    ActionRecord(
                        id: actionID, target: target.id, action: action.rawValue,
                        status: result.succeeded ? .succeeded : .failed, startedAt: startedAt,
                        finishedAt: clock.now(), message: result.succeeded ? nil : result.summary)
                ]))
            if !result.succeeded {
                failure = "\(action.rawValue) of \(stable) \(result.summary)"
                break
            }
        }
        let now = clock.now()
        if let failure {
            try await store.apply(
                StateWrite(events: [
                    Event(
                        time: now, kind: .stepFailed, target: target.id, revision: rollout.revision, version: stable,
                        message: "automatic rollback failed: \(failure)")
                ]))
            return TargetOutcome(
                target: target.id, result: .failed, fromVersion: rollout.previousVersion, toVersion: rollout.version,
                classification: rollout.classification, message: "\(reason); automatic rollback failed: \(failure)",
                executorCalls: calls)
        }

        state.phase = .rolledBack
        state.updatedAt = now
        var ledger = try await store.deployments(
            DeploymentQuery(ids: [Self.deploymentID(target.id, rollout)], limit: 1))
        for index in ledger.indices { ledger[index].recoveredAt = now }
        ledger.append(
            DeploymentRecord(
                id: Self.deploymentID(target.id, rollout) + ".rollback", target: target.id,
                production: ledger.first?.production ?? false, revision: rollout.revision, version: stable,
                previousVersion: rollout.version, classification: .rollback, startedAt: now, finishedAt: now,
                succeeded: true))
        var events = [
            Event(
                time: now, kind: .deploymentRolledBack, target: target.id, revision: rollout.revision,
                version: stable, previousVersion: rollout.version, classification: .rollback,
                message: "rolled back to \(stable) automatically: \(reason)")
        ]
        var message = "rolled back to \(stable) automatically"
        if spec.writeBack == .revert {
            do {
                let reverted = try writeBackRevert(target: target, failed: rollout, stableRevision: state.revision)
                if !reverted.isEmpty {
                    events.append(
                        Event(
                            time: now, kind: .revertCommitted, target: target.id, revision: reverted.last,
                            version: stable, previousVersion: rollout.version, classification: .rollback,
                            message: "reverted \(reverted.count) commit(s) so git matches what runs: "
                                + reverted.map(\.short).joined(separator: ", ")))
                    message += "; reverted in git (\(reverted.map(\.short).joined(separator: ", ")))"
                }
            } catch {
                events.append(
                    Event(
                        time: now, kind: .reconcileError, target: target.id, revision: rollout.revision,
                        message: "could not write the revert back to git: \(error)"))
                message += "; could not write the revert back to git: \(error)"
            }
        }
        try await store.apply(StateWrite(targets: [state], events: events, deployments: ledger))
        return TargetOutcome(
            target: target.id, result: .failed, fromVersion: rollout.previousVersion, toVersion: rollout.version,
            classification: rollout.classification, message: "\(reason); \(message)", executorCalls: calls)
    }

    /// Reverts, on the tracked branch, the commits between the stable revision and the failed one that touched
    /// the service's manifest — newest first, one revert commit each.
    func writeBackRevert(target: DesiredTarget, failed: Rollout, stableRevision: ObjectID?) throws -> [ObjectID] {
        let commits = try repository.commits(
            from: failed.revision, excluding: stableRevision, touching: [target.location.file], limit: 50)
        guard !commits.isEmpty else { return [] }
        let branchName = try branch ?? repository.headBranch() ?? "main"
        let head = try repository.resolveCommit(branch: branchName)
        let result = try repository.revert(
            commits.map(\.id), branch: branchName, parent: head,
            note: "Tide rolled \(target.id) back to the stable version after: \(failed.version) failed.")
        return result.commits
    }

    /// `tide rollback`: revert the commits the live deployment of a target shipped, so the next pass rolls back
    /// on the fast path (ROLLBACK passes every gate).
    public func rollbackCommit(service: String, environment: String) async throws -> [ObjectID] {
        let id = TargetID(service: service, environment: environment)
        guard let live = try await store.liveTarget(id), let version = live.version else {
            throw RollbackError.nothingLive(id)
        }
        let deployment = try await store.deployments(DeploymentQuery(target: id, limit: 100))
            .first { $0.succeeded && $0.version == version && $0.classification != .rollback }
        // A first deployment has nothing to go back to: reverting the commits that created the service would
        // remove it, which is a different decision.
        guard let deployment, deployment.previousVersion != nil, !deployment.changes.isEmpty else {
            throw RollbackError.nothingToRevert(id, version)
        }
        let branchName = try branch ?? repository.headBranch() ?? "main"
        let head = try repository.resolveCommit(branch: branchName)
        let commits = deployment.changes.sorted { $0.committedAt > $1.committedAt }.map(\.commit)
        let result = try repository.revert(
            commits, branch: branchName, parent: head,
            note: "Rolled back with tide rollback \(service) --env \(environment).")
        try await store.apply(
            StateWrite(events: [
                Event(
                    time: clock.now(), kind: .revertCommitted, target: id, revision: result.commits.last,
                    version: deployment.previousVersion, previousVersion: version, classification: .rollback,
                    message: "tide rollback reverted " + commits.map(\.short).joined(separator: ", "))
            ]))
        return result.commits
    }
}

/// Why `tide rollback` cannot write a revert.
public enum RollbackError: Error, CustomStringConvertible, Sendable {
    case nothingLive(TargetID)
    case nothingToRevert(TargetID, String)

    public var description: String {
        switch self {
        case .nothingLive(let id): "\(id) runs nothing yet"
        case .nothingToRevert(let id, let version):
            "no commit brought \(version) to \(id) (it was the first deployment, or a rollback itself); "
                + "edit the version in git instead"
        }
    }
}
