public import Foundation

/// An executor's circuit breaker, as recorded: how many of its actions failed in a row (across its targets), and
/// until when its actions are not attempted.
public struct ExecutorHealth: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable {
        /// Actions run.
        case closed
        /// Too many failures in a row: actions are not attempted until `openUntil`.
        case open
        /// The cool-down is over: one trial action goes through; its success closes the breaker.
        case halfOpen = "half-open"
    }

    public var executor: String
    public var consecutiveFailures: Int
    /// Set while the breaker is open (or half-open, once this time has passed).
    public var openUntil: Date?
    /// The last failure, for status.
    public var lastFailure: String?
    public var updatedAt: Date

    public init(
        executor: String, consecutiveFailures: Int = 0, openUntil: Date? = nil, lastFailure: String? = nil,
        updatedAt: Date
    ) {
        self.executor = executor
        self.consecutiveFailures = consecutiveFailures
        self.openUntil = openUntil
        self.lastFailure = lastFailure
        self.updatedAt = updatedAt
    }

    /// "1 failure in a row", "5 failures in a row".
    public static func inARow(_ count: Int) -> String {
        "\(count) failure\(count == 1 ? "" : "s") in a row"
    }

    public func state(at now: Date) -> State {
        guard let openUntil else { return .closed }
        return now < openUntil ? .open : .halfOpen
    }
}
