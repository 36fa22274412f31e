import Synchronization
import TideManifest

/// Turns on targets inside one process: a target's part of a pass and an operator's control of it (`tide abort`,
/// `pause`, `promote`, …) never run at once, and a control waits at most until the target's current step returns.
///
/// Every release is numbered, so a pass can tell whether a target changed hands after it read the target's live
/// state (an operator acted on it meanwhile): that read is stale, and the target is planned again.
///
/// What must never happen: two holders of one target at once; a waiter never woken (release hands the target to
/// the oldest waiter, in arrival order); a stale plan run (see `changed(since:)`).
final class TargetLocks: Sendable {
    private struct State {
        var held: Set<TargetID> = []
        var waiters: [TargetID: [(operator: Bool, turn: CheckedContinuation<Void, Never>)]] = [:]
        /// The number of the last release of each target.
        var released: [TargetID: Int] = [:]
        var releases = 0
    }

    private let state = Mutex(State())

    /// Takes the target, waiting for its holder to release it. `operator`: an operator's control waits, so a
    /// rollout holding the target yields at its next step (`operatorWaits`).
    func acquire(_ id: TargetID, operator: Bool = false) async {
        let taken = state.withLock { state -> Bool in
            guard state.held.contains(id) else {
                state.held.insert(id)
                return true
            }
            return false
        }
        if taken { return }
        await withCheckedContinuation { (turn: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard state.held.contains(id) else {
                    state.held.insert(id)
                    return true
                }
                state.waiters[id, default: []].append((`operator`, turn))
                return false
            }
            if now { turn.resume() }
        }
    }

    /// Hands the target to its oldest waiter, or frees it. `noted`: the release counts as the target changing
    /// hands (not for a holder whose writes the pass it belongs to already sees).
    func release(_ id: TargetID, noted: Bool = true) {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if noted {
                state.releases += 1
                state.released[id] = state.releases
            }
            guard var queue = state.waiters[id], !queue.isEmpty else {
                state.held.remove(id)
                return nil
            }
            let next = queue.removeFirst()
            state.waiters[id] = queue.isEmpty ? nil : queue
            return next.turn
        }
        next?.resume()
    }

    /// Runs `body` holding the target.
    func with<T>(
        _ id: TargetID, operator: Bool = false, noted: Bool = true, _ body: () async throws -> T
    ) async rethrows -> T {
        await acquire(id, operator: `operator`)
        defer { release(id, noted: noted) }
        return try await body()
    }

    /// Runs `body` holding every target of `ids` (taken in one order, so two callers never deadlock).
    func with<T>(all ids: [TargetID], _ body: () async throws -> T) async rethrows -> T {
        let sorted = Set(ids).sorted()
        for id in sorted { await acquire(id) }
        defer { for id in sorted { release(id) } }
        return try await body()
    }

    /// Whether an operator's control waits for the target.
    func operatorWaits(_ id: TargetID) -> Bool {
        state.withLock { $0.waiters[id]?.contains { $0.operator } ?? false }
    }

    /// The number of the last release so far (what a pass notes before it reads live state).
    var mark: Int { state.withLock { $0.releases } }

    /// Whether the target was released after `mark` (it changed hands since then).
    func changed(_ id: TargetID, since mark: Int) -> Bool {
        state.withLock { ($0.released[id] ?? 0) > mark }
    }
}
