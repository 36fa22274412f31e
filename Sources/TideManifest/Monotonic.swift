import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Waits on the real monotonic clock, whatever the wall clock says.
///
/// Swift's `Task.sleep` and Dispatch's timers arm a `timerfd` with an absolute deadline; under `faketime` (how the
/// end-to-end tests run Tide at a chosen wall-clock time, `FAKETIME_DONT_FAKE_MONOTONIC=1`) libfaketime shifts that
/// deadline by its offset, and the wait never ends — a retry's backoff, an executor's timeout, a poll interval.
/// Here one thread keeps every deadline, measured with `CLOCK_MONOTONIC`, and sleeps in `poll(2)` with a relative
/// timeout (which libfaketime passes through), woken through a pipe when an earlier deadline arrives.
///
/// What must never happen: a wait that ends before its time (deadlines are checked against the clock, not the
/// sleep), or never (every registration wakes the thread, every wake recomputes the earliest deadline).
public enum Monotonic {
    /// Seconds on the monotonic clock (since boot), never faked.
    public static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// Waits `seconds`; throws `CancellationError` at once when the task is cancelled.
    public static func sleep(seconds: Double) async throws {
        guard seconds > 0 else {
            try Task.checkCancellation()
            return
        }
        let id = Timers.shared.nextID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                Timers.shared.add(id: id, at: now() + seconds) { fired in
                    if fired { done.resume() } else { done.resume(throwing: CancellationError()) }
                }
                // Cancelled before the deadline was registered: the handler found nothing to cancel.
                if Task.isCancelled { Timers.shared.cancel(id) }
            }
        } onCancel: {
            Timers.shared.cancel(id)
        }
    }

    /// Waits `seconds`, or until the task is cancelled (no error: for loops that check `Task.isCancelled`).
    public static func pause(seconds: Double) async {
        try? await sleep(seconds: seconds)
    }

    /// A handler run (on the timer thread: keep it short) after `seconds`, unless cancelled first.
    public final class Alarm: Sendable {
        let id: UInt64

        init(id: UInt64) {
            self.id = id
        }

        /// Stops it from firing (no effect once it fired).
        public func cancel() { Timers.shared.cancel(id) }
    }

    /// Runs `handler` after `seconds` on the timer thread.
    @discardableResult
    public static func after(seconds: Double, _ handler: @escaping @Sendable () -> Void) -> Alarm {
        let id = Timers.shared.nextID()
        Timers.shared.add(id: id, at: now() + seconds) { fired in
            if fired { handler() }
        }
        return Alarm(id: id)
    }

    /// The deadlines and the thread that keeps them.
    final class Timers: Sendable {
        static let shared = Timers()

        struct Entry {
            var at: Double
            var call: @Sendable (Bool) -> Void
        }

        private let entries = Mutex<(next: UInt64, due: [UInt64: Entry])>((1, [:]))
        /// Writing a byte to `wake[1]` ends the thread's `poll`.
        private let wake: (Int32, Int32)

        private init() {
            var fds: [Int32] = [-1, -1]
            _ = pipe(&fds)
            for fd in fds {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
            wake = (fds[0], fds[1])
            let thread = Thread { [self] in run() }
            thread.name = "tide-monotonic-timers"
            thread.start()
        }

        func nextID() -> UInt64 {
            entries.withLock { state in
                defer { state.next += 1 }
                return state.next
            }
        }

        func add(id: UInt64, at deadline: Double, _ call: @escaping @Sendable (Bool) -> Void) {
            entries.withLock { $0.due[id] = Entry(at: deadline, call: call) }
            poke()
        }

        /// Removes a deadline; its call is told it did not fire.
        func cancel(_ id: UInt64) {
            guard let entry = entries.withLock({ $0.due.removeValue(forKey: id) }) else { return }
            entry.call(false)
        }

        private func poke() {
            var byte: UInt8 = 1
            _ = write(wake.1, &byte, 1)
        }

        private func run() {
            var buffer = [UInt8](repeating: 0, count: 64)
            while true {
                let now = Monotonic.now()
                let (fired, earliest) = entries.withLock { state -> ([Entry], Double?) in
                    let due = state.due.filter { $0.value.at <= now }
                    for id in due.keys { state.due[id] = nil }
                    return (Array(due.values), state.due.values.map(\.at).min())
                }
                for entry in fired { entry.call(true) }
                let timeout =
                    earliest.map { Int32(min(60_000, max(0, ($0 - Monotonic.now()) * 1000).rounded(.up))) } ?? 60_000
                var descriptor = pollfd(fd: wake.0, events: Int16(POLLIN), revents: 0)
                if poll(&descriptor, 1, timeout) > 0 {
                    while read(wake.0, &buffer, buffer.count) > 0 {}
                }
            }
        }
    }
}
