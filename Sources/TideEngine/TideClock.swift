public import Foundation
import TideManifest

/// Where a reconcile pass gets "now" from. Injected, so a `pause: 24h` is testable in milliseconds.
public protocol TideClock: Sendable {
    func now() -> Date
    /// Waits `seconds` (a retry's backoff). A test clock moves itself instead.
    func sleep(seconds: Double) async
}

extension TideClock {
    public func sleep(seconds: Double) async {
        guard seconds > 0 else { return }
        // The real monotonic clock: a backoff ends under faketime too (see `Monotonic`).
        await Monotonic.pause(seconds: seconds)
    }
}

/// The wall clock.
public struct SystemClock: TideClock {
    public init() {}

    public func now() -> Date { Date() }
}
