import Synchronization

/// Runs `body`, unless `deadline` comes first: then `expire` is called — it must make `body` give up soon (close
/// its connection, interrupt its statement) — and `late()` is thrown at once, without waiting for `body`. A
/// server that accepts a connection and then stops answering cannot hold a caller past its deadline this way.
/// Cancelling the calling task expires it too.
func withDeadline<T: Sendable>(
    _ deadline: ContinuousClock.Instant, expire: @escaping @Sendable () -> Void,
    late: @escaping @Sendable () -> any Error, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = DeadlineRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(continuation)
            let work = Task {
                do {
                    race.finish(.success(try await body()))
                } catch {
                    race.finish(.failure(error))
                }
            }
            race.watch(
                Task {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    guard !Task.isCancelled, race.finish(.failure(late())) else { return }
                    expire()
                    work.cancel()
                })
        }
    } onCancel: {
        if race.finish(.failure(CancellationError())) { expire() }
    }
}

/// Who finishes first — the work, the timer or a cancellation — resumes the caller; the others find it done.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var timer: Task<Void, Never>?
        /// A result that came before the continuation was there (the caller was cancelled at once).
        var early: Result<T, any Error>?
        var finished = false
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            guard let early = state.early else {
                state.continuation = continuation
                return nil
            }
            state.early = nil
            return early
        }
        if let early { continuation.resume(with: early) }
    }

    func watch(_ timer: Task<Void, Never>) {
        let done = state.withLock { state in
            state.timer = timer
            return state.finished
        }
        if done { timer.cancel() }
    }

    /// Resumes the caller with `result` if nobody did yet; returns whether this call did.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (first, continuation, timer) = state.withLock {
            state -> (Bool, CheckedContinuation<T, any Error>?, Task<Void, Never>?) in
            guard !state.finished else { return (false, nil, nil) }
            state.finished = true
            defer { state.continuation = nil }
            if state.continuation == nil { state.early = result }
            return (true, state.continuation, state.timer)
        }
        timer?.cancel()
        continuation?.resume(with: result)
        return first
    }
}
