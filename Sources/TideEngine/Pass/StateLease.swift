import Synchronization
import TideState

/// The state store's exclusive lock, shared inside this process: a pass and the operators' controls that `tide run`
/// carries out meanwhile hold it together (they keep out of each other's way target by target, with
/// `TargetLocks`), while other processes wait for it as before. The store's lock is taken when the first holder
/// comes and let go when the last one leaves.
///
/// What must never happen: another process writing while a holder here runs (the store's lock stays held from the
/// first entry to the last exit); a holder here running without it.
final class StateLease: Sendable {
    private struct State {
        var holders = 0
        /// Resumed when the last holder leaves: the task holding the store's lock lets go.
        var letGo: CheckedContinuation<Void, Never>?
        /// The task that holds the store's lock (awaited by the last holder, so the lock is free when it returns).
        var holding: Task<Void, Never>?
        /// The last holding task, letting go: the next taker waits for it.
        var releasing: Task<Void, Never>?
    }

    private let store: any StateStore
    private let state = Mutex(State())
    /// One taker of the store's lock at a time.
    private let taking = AsyncLock()

    init(store: any StateStore) {
        self.store = store
    }

    /// Runs `body` holding the lease.
    func run<T: Sendable>(timeout: Double, _ body: () async throws -> T) async throws -> T {
        try await enter(timeout: timeout)
        do {
            let result = try await body()
            await leave()
            return result
        } catch {
            await leave()
            throw error
        }
    }

    private func join() -> Bool {
        state.withLock { state in
            guard state.holders > 0 else { return false }
            state.holders += 1
            return true
        }
    }

    private func enter(timeout: Double) async throws {
        if join() { return }
        try await taking.run {
            if join() { return }
            // The last holder's task may still be letting the store's lock go.
            await state.withLock { $0.releasing }?.value
            try await withCheckedThrowingContinuation { (entered: CheckedContinuation<Void, any Error>) in
                let holding = Task {
                    do {
                        try await store.withExclusiveLock(timeout: timeout) {
                            await withCheckedContinuation { (letGo: CheckedContinuation<Void, Never>) in
                                state.withLock { state in
                                    state.holders = 1
                                    state.letGo = letGo
                                }
                                entered.resume()
                            }
                        }
                    } catch {
                        entered.resume(throwing: error)
                    }
                }
                state.withLock { $0.holding = holding }
            }
        }
    }

    private func leave() async {
        let last = state.withLock { state -> (CheckedContinuation<Void, Never>?, Task<Void, Never>?)? in
            state.holders -= 1
            guard state.holders == 0 else { return nil }
            defer {
                state.letGo = nil
                state.releasing = state.holding
                state.holding = nil
            }
            return (state.letGo, state.holding)
        }
        guard let last else { return }
        last.0?.resume()
        await last.1?.value
    }
}
