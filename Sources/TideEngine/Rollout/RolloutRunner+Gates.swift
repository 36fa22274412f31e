import Foundation
import TideGit
import TideManifest
import TideState

extension RolloutRunner {
    /// A deployment the planner found gated: the gates are evaluated again against the state as this pass left
    /// it (an upstream environment may have just been deployed), and it rolls out if they opened. Otherwise the
    /// target records why it waits — once per reason, so a pass that changes nothing writes nothing.
    func waitOrRoll(
        _ action: PlannedAction, live: LiveTarget?, desired: DesiredState, revision: ObjectID,
        settled: [TargetID: TargetOutcome.Result]
    ) async throws -> TargetOutcome {
        let now = clock.now()
        let version = action.toVersion ?? ""
        guard let wanted = desired.target(action.target) else {
            throw ControlError(description: "\(action.target) is not in desired state")
        }
        let gates = try await GateEvaluator(desired: desired, store: store, now: now).gates(
            for: wanted, classification: action.classification ?? .feature)
        if gates.isEmpty {
            var open = action
            open.kind = .deploy
            open.gates = []
            let current = try await store.liveTarget(action.target) ?? live
            return try await deploy(open, live: current, desired: desired, revision: revision, settled: settled)
        }
        let reason = gates.map(\.reason).joined(separator: "; ")
        var state =
            live
            ?? LiveTarget(id: action.target, executor: action.executor, phase: .pending, updatedAt: now)
        if state.waiting != reason {
            state.waiting = reason
            state.waitingOn = gates.map { .gate($0.kind) }
            state.updatedAt = now
            try await journal.commit(
                StateWrite(
                    targets: [state],
                    events: [
                        Event(
                            time: now, kind: .gateWaiting, target: action.target, revision: revision, version: version,
                            previousVersion: action.fromVersion, classification: action.classification,
                            message: reason.hasPrefix("waiting for ")
                                ? "\(version) waits for " + reason.dropFirst("waiting for ".count)
                                : "\(version) waits: \(reason)",
                            details: .object([
                                "gates": .array(gates.map { .string($0.kind.rawValue) })
                            ]))
                    ]))
        }
        return TargetOutcome(
            target: action.target, result: .waiting, fromVersion: action.fromVersion, toVersion: version,
            classification: action.classification, message: reason, executorCalls: 0,
            nextDue: gates.compactMap(\.until).min())
    }
}
