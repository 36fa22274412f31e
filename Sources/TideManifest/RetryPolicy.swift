import Foundation

/// How often a transient failure (a timeout, a refused connection, a busy database, exit code 75 = EX_TEMPFAIL) is
/// retried, with the same `TIDE_ACTION_ID`, before the target waits: `retry: {limit: 3, backoff: 5s, factor: 2}` on
/// a Service (for its targets) or an Executor (for every target it runs).
public struct RetryPolicy: Sendable, Hashable, Codable {
    /// Retries after the first try.
    public var limit: Int
    /// Seconds before the first retry.
    public var backoff: Double
    /// Each wait is this many times the one before.
    public var factor: Double

    public init(limit: Int = 3, backoff: Double = 5, factor: Double = 2) {
        self.limit = limit
        self.backoff = backoff
        self.factor = factor
    }

    /// Seconds to wait before retry `attempt` (1-based).
    public func delay(before attempt: Int) -> Double {
        backoff * pow(factor, Double(max(0, attempt - 1)))
    }
}

/// `circuitBreaker: {failureThreshold: 5, coolDown: 60s}` on an Executor: after that many failed actions in a row,
/// across its targets, its actions are not attempted for `coolDown`; then one trial action goes through
/// (half-open), and a success closes the breaker again.
public struct CircuitBreakerPolicy: Sendable, Hashable, Codable {
    public var failureThreshold: Int
    public var coolDown: Double

    public init(failureThreshold: Int = 5, coolDown: Double = 60) {
        self.failureThreshold = failureThreshold
        self.coolDown = coolDown
    }
}

/// What keeps a rollout going through transient trouble, and what stops one that makes no progress: set on
/// Services (`retry`, `progressDeadline`, `progressDeadlineAbort`) and Executors (`retry`, `circuitBreaker`).
public struct Resilience: Sendable, Hashable {
    /// nil: not set here (a Service then uses its executor's, and an executor the defaults).
    public var retry: RetryPolicy?
    public var circuitBreaker = CircuitBreakerPolicy()
    /// A rollout that makes no progress for this long is stuck (seconds). Time it waits for a person (an open
    /// pause, an inconclusive analysis, `tide pause`) never counts, as in Argo Rollouts.
    public var progressDeadline: Double = 1800
    /// Whether a stuck rollout is aborted to stable (Argo Rollouts' `progressDeadlineAbort`). Tide's default is
    /// true; with false it is only marked stuck (status, `tide_target_state{state="stuck"}`) and keeps trying.
    public var progressDeadlineAbort = true
    /// A rollback to one of the last this many releases that ran here skips the strategy's steps and analyses
    /// (Argo Rollouts' `rollbackWindow.revisions`); nil: every rollback runs the strategy.
    public var rollbackWindow: Int?

    public init() {}

    /// Fields a Service may set.
    static let serviceFields = ["retry", "progressDeadline", "progressDeadlineAbort", "rollbackWindow"]
    /// Fields an Executor may set.
    static let executorFields = ["retry", "circuitBreaker"]
}

extension NodeReader {
    /// The resilience fields of a Service or Executor spec (`spec` passed its allowed-keys check).
    mutating func resilience(_ spec: FieldMap) -> Resilience {
        var settings = Resilience()
        if let field = spec["retry"] {
            if let map = fields(field, allowed: ["limit", "backoff", "factor"]) {
                var retry = RetryPolicy()
                if let limit = map["limit"], let text = string(limit) {
                    if let value = Int(text), (0...20).contains(value) {
                        retry.limit = value
                    } else {
                        error(limit, "expected a whole number from 0 to 20")
                    }
                }
                if let backoff = map["backoff"], let seconds = duration(backoff) {
                    if seconds <= 3600 { retry.backoff = seconds } else { error(backoff, "at most 1h") }
                }
                if let factor = map["factor"], let text = string(factor) {
                    if let value = Double(text), value >= 1, value <= 10 {
                        retry.factor = value
                    } else {
                        error(factor, "expected a number from 1 to 10")
                    }
                }
                settings.retry = retry
            }
        }
        if let field = spec["circuitBreaker"] {
            if let map = fields(field, allowed: ["failureThreshold", "coolDown"]) {
                if let threshold = map["failureThreshold"], let text = string(threshold) {
                    if let value = Int(text), (1...1000).contains(value) {
                        settings.circuitBreaker.failureThreshold = value
                    } else {
                        error(threshold, "expected a whole number from 1 to 1000")
                    }
                }
                if let coolDown = map["coolDown"], let seconds = duration(coolDown) {
                    if seconds > 0 {
                        settings.circuitBreaker.coolDown = seconds
                    } else {
                        error(coolDown, "must be longer than 0s")
                    }
                }
            }
        }
        if let field = spec["progressDeadline"] {
            if let seconds = duration(field) {
                if seconds > 0 { settings.progressDeadline = seconds } else { error(field, "must be longer than 0s") }
            }
        }
        if let value = spec["progressDeadlineAbort"].flatMap({ bool($0) }) {
            settings.progressDeadlineAbort = value
        }
        if let field = spec["rollbackWindow"], let map = fields(field, allowed: ["revisions"], required: ["revisions"]),
            let revisions = map["revisions"], let text = string(revisions)
        {
            if let value = Int(text), (1...100).contains(value) {
                settings.rollbackWindow = value
            } else {
                error(revisions, "expected a whole number from 1 to 100")
            }
        }
        return settings
    }
}
