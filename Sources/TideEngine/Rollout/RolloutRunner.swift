import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

/// Runs one target's rollout: begins it (migrations first), steps it, reads its analysis, rolls it back and retries
/// a failed rollback, pre-empts it for a newer version, waits out transient failures and resumes interrupted
/// steps. The pass gives it one planned action at a time (`run`); what it changes it records through the journal.
public struct RolloutRunner: EngineCollaborator {
    let context: EngineContext
    let resolver: RevisionResolver
    let migrations: MigrationCoordinator
    let promoter: Promoter
    let branchWriter: BranchWriter
}

extension RolloutRunner {
    /// One target's part of a pass, with its errors kept to itself.
    func run(
        _ action: PlannedAction, live: LiveTarget?, desired: DesiredState, revision: ObjectID,
        settled: [TargetID: TargetOutcome.Result]
    ) async -> TargetOutcome {
        if let outcome = Self.outcomeWithoutRunning(action, live: live, desired: desired) { return outcome }
        do {
            switch action.kind {
            case .none:
                if var state = live, state.waiting != nil || Self.adoptsRelease(state, desired.target(action.target)) {
                    // Desired state came back to what runs: whatever held the last desired version is moot.
                    state.waiting = nil
                    state.waitingOn = []
                    if let wanted = desired.target(action.target), Self.adoptsRelease(state, wanted) {
                        state.release = try await adoptedRelease(state, wanted)
                    }
                    try await journal.commit(StateWrite(targets: [state]))
                }
                return TargetOutcome(
                    target: action.target, result: .unchanged, fromVersion: action.fromVersion,
                    toVersion: action.toVersion, classification: nil, message: nil, executorCalls: 0)
            case .suspended, .holdFailed:
                preconditionFailure("answered by outcomeWithoutRunning")
            case .refuse:
                return try await migrations.refuse(action, live: live, revision: revision)
            case .rollingBack:
                guard let live else { throw ControlError(description: "\(action.target) has no live record") }
                return try await continueRollingBack(action, live: live, desired: desired)
            case .wait:
                return try await waitOrRoll(action, live: live, desired: desired, revision: revision, settled: settled)
            case .deploy, .resume:
                return try await deploy(action, live: live, desired: desired, revision: revision, settled: settled)
            case .remove:
                guard let live else { throw ControlError(description: "\(action.target) has no live record to remove") }
                return try await remove(action, live: live, desired: desired, revision: revision)
            }
        } catch  where error is CancellationError || Task.isCancelled {
            // Shutting down: nothing is recorded, and the step under way stays recorded as started, so the next
            // start runs it again under the same action id.
            return TargetOutcome(
                target: action.target, result: .progressing, fromVersion: action.fromVersion,
                toVersion: action.toVersion, classification: action.classification,
                message: "interrupted: Tide is shutting down", executorCalls: 0)
        } catch {
            let message = "\(action.kind.rawValue) failed: \(error)"
            // Recorded on the target too, so `tide status` shows it there until a pass gets past it.
            var targets: [LiveTarget] = []
            if action.kind != .remove {
                var target =
                    (try? await store.liveTarget(action.target)).flatMap { $0 }
                    ?? LiveTarget(id: action.target, executor: action.executor, phase: .pending, updatedAt: clock.now())
                target.waiting = Self.errorPrefix + message
                target.waitingOn.removeAll(where: \.isError)
                target.waitingOn.append(.error(message))
                target.updatedAt = clock.now()
                targets.append(target)
            }
            try? await journal.commit(
                StateWrite(
                    targets: targets,
                    events: [
                        Event(
                            time: clock.now(), kind: .reconcileError, target: action.target, revision: revision,
                            version: action.toVersion, message: message)
                    ]))
            return TargetOutcome(
                target: action.target, result: .failed, fromVersion: action.fromVersion, toVersion: action.toVersion,
                classification: action.classification, message: message, executorCalls: 0)
        }
    }

    /// The outcome of an action that needs neither its target's turn nor a write — nothing to do (no wait to
    /// clear, no release to adopt), suspended, held failed — answered at once: a pass over 30,000 settled targets
    /// starts a task only for those that change. nil when the action must run.
    static func outcomeWithoutRunning(_ action: PlannedAction, live: LiveTarget?, desired: DesiredState)
        -> TargetOutcome?
    {
        let result: TargetOutcome.Result
        switch action.kind {
        case .none:
            if let live, live.waiting != nil || adoptsRelease(live, desired.target(action.target)) { return nil }
            return TargetOutcome(
                target: action.target, result: .unchanged, fromVersion: action.fromVersion,
                toVersion: action.toVersion, classification: nil, message: nil, executorCalls: 0)
        case .suspended: result = .suspended
        case .holdFailed: result = .held
        default: return nil
        }
        return TargetOutcome(
            target: action.target, result: result, fromVersion: action.fromVersion, toVersion: action.toVersion,
            classification: nil, message: action.reason, executorCalls: 0)
    }

    /// Whether a target in sync with `wanted` has no release recorded (it was deployed before releases were
    /// kept), or one whose base config differs only in how the same config is split between `spec.config` and the
    /// environment's override: the next write records the desired one.
    static func adoptsRelease(_ state: LiveTarget, _ wanted: DesiredTarget?) -> Bool {
        guard let wanted, state.phase == .healthy, state.version == wanted.version,
            state.configDigest == wanted.configDigest
        else { return false }
        guard let release = state.release else { return true }
        return release.baseConfigDigest != wanted.baseConfigDigest && release.executorDigest == wanted.executorDigest
    }

    /// The release a target in sync with `wanted` runs: what desired state says, since when its version last
    /// finished deploying (or the time of its record).
    func adoptedRelease(_ state: LiveTarget, _ wanted: DesiredTarget) async throws -> Release {
        var since = state.release?.deployedAt
        if since == nil {
            since = try await store.deployments(DeploymentQuery(target: state.id, limit: 50))
                .first { $0.succeeded && $0.version == state.version }?.finishedAt
        }
        return Release(
            baseConfigDigest: wanted.baseConfigDigest, executorDigest: wanted.executorDigest,
            deployedAt: since ?? state.updatedAt)
    }

    /// How an error recorded on a target (`LiveTarget.waiting`) starts.
    static let errorPrefix = "error: "

    /// Rolls a deploy or resume action out, unless a same-environment dependency is not healthy.
    func deploy(
        _ action: PlannedAction, live: LiveTarget?, desired: DesiredState, revision: ObjectID,
        settled: [TargetID: TargetOutcome.Result]
    ) async throws -> TargetOutcome {
        // A dependency that failed blocks (a failure to report); one still rolling out or waiting at a gate only
        // makes this wait.
        let unsettled = action.dependsOn.compactMap { dependency -> (TargetID, TargetOutcome.Result)? in
            let id = TargetID(service: dependency, environment: action.target.environment)
            guard let result = settled[id], result != .unchanged, result != .deployed else { return nil }
            return (id, result)
        }
        if !unsettled.isEmpty {
            let failed = unsettled.contains { [.failed, .blocked, .held].contains($0.1) }
            return TargetOutcome(
                target: action.target, result: failed ? .blocked : .waiting, fromVersion: action.fromVersion,
                toVersion: action.toVersion, classification: action.classification,
                message: "waiting for \(unsettled.map(\.0.description).joined(separator: ", ")) to be healthy",
                executorCalls: 0)
        }
        // desired.target(...) exists: the planner made this action from it.
        let target = desired.target(action.target)!
        return try await roll(action, target: target, live: live, desired: desired, revision: revision)
    }
}
