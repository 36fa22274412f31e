import Synchronization

/// Runs `body`, or fails with a `FixtureError` after `seconds` without waiting for it any longer: a test of a
/// call that must not hang fails instead of hanging the test run.
public func withTimeout<T: Sendable>(
    seconds: Int, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = Race<T>()
    return try await withCheckedThrowingContinuation { continuation in
        race.start(continuation)
        let work = Task {
            do {
                race.finish(.success(try await body()))
            } catch {
                race.finish(.failure(error))
            }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            if race.finish(.failure(FixtureError("the call did not return within \(seconds)s"))) { work.cancel() }
        }
    }
}

/// Whoever finishes first — the work or the timer — resumes the caller.
private final class Race<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, early: Result<T, any Error>?)>(
        (nil, nil))
    private let done = Atomic<Bool>(false)

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            state.continuation = continuation
            return state.early
        }
        if let early { continuation.resume(with: early) }
    }

    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
            if state.continuation == nil { state.early = result }
            return state.continuation
        }
        continuation?.resume(with: result)
        return true
    }
}

/// Tests that measure Tide's own time limits wait for this first: when the whole suite starts, hundreds of tests
/// run their synchronous fixtures (git, psql) on Swift's few cooperative threads at once, and for a while a
/// timer or an I/O completion can wait tens of seconds for a thread. Returns once a 10 ms sleep comes back
/// within 100 ms three times in a row (or after two minutes).
public func waitUntilThreadsAreResponsive() async {
    let deadline = ContinuousClock.now + .seconds(120)
    var good = 0
    while good < 3 && ContinuousClock.now < deadline {
        let start = ContinuousClock.now
        try? await Task.sleep(for: .milliseconds(10))
        good = ContinuousClock.now - start < .milliseconds(100) ? good + 1 : 0
    }
}
