import Foundation
import TideExecutors
import TideState

/// Executor processes left running by a Tide that was killed are stopped before a pass runs anything: the step
/// they belong to is re-run with the same action id, and two copies of one step must never run at once.
///
/// Must never happen: a step re-run while its earlier run's processes still run; a process of a step that
/// finished, or of another action, stopped; the pass going on while a process could not be stopped.
extension RolloutRunner {
    /// How long interrupted executor processes get after SIGTERM before SIGKILL.
    static let interruptedGrace = 10.0

    func stopInterruptedActions() async throws {
        // Plugins this process starts are marked with the install, before any starts in this pass.
        ActionProcesses.setInstall(try await store.installID())
        let open = try await store.openActions()
        let checked = context.memory.withLock { $0.checkedOpenActions }
        let unchecked = open.filter { !checked.contains(Self.checkKey($0)) }
        guard !unchecked.isEmpty else { return }
        let found = ActionProcesses.running(actionIDs: Set(unchecked.map(\.id)))
        // Plugins serve many actions, so they carry their Tide's identity instead: those whose Tide is gone may be
        // in the middle of an interrupted action.
        let plugins = ActionProcesses.orphanedPlugins()
        if !plugins.isEmpty {
            let left = await ActionProcesses.stop(plugins, grace: Self.interruptedGrace)
            guard left.isEmpty else { throw EngineError.interruptedProcessesRunning(left) }
        }
        if !found.isEmpty {
            let left = await ActionProcesses.stop(found, grace: Self.interruptedGrace)
            let now = clock.now()
            let events = unchecked.compactMap { action -> Event? in
                let pids = found.filter { $0.actionID == action.id }.map(\.pid)
                guard !pids.isEmpty else { return nil }
                return Event(
                    time: now, kind: .stepOrphansStopped, target: action.target,
                    message: "stopped \(pids.count) process(es) an interrupted Tide left running for "
                        + "\(action.action) (action \(action.id), pid \(pids.map(String.init).joined(separator: ", "))) "
                        + "before running it again",
                    details: .object([
                        "action": .string(action.action), "actionID": .string(action.id),
                        "pids": .array(pids.map { .int(Int64($0)) }),
                    ]))
            }
            try await journal.commit(StateWrite(events: events))
            guard left.isEmpty else { throw EngineError.interruptedProcessesRunning(left) }
        }
        context.memory.withLock { $0.checkedOpenActions.formUnion(unchecked.map(Self.checkKey)) }
    }

    private static func checkKey(_ action: ActionRecord) -> String {
        "\(action.id)@\(action.startedAt.timeIntervalSince1970)"
    }
}
