public import Foundation

/// Where a reconcile pass gets "now" from. Injected, so a `pause: 24h` is testable in milliseconds.
public protocol TideClock: Sendable {
    func now() -> Date
}

/// The wall clock.
public struct SystemClock: TideClock {
    public init() {}

    public func now() -> Date { Date() }
}
