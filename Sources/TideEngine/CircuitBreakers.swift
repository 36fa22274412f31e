public import Foundation
public import TideManifest
public import TideState

/// Every executor's circuit breaker during a pass (loaded from the store at its start, written back when it
/// changes): after `failureThreshold` failed actions in a row across an executor's targets, its actions are not
/// attempted until `coolDown` has passed; then one trial action goes through (half-open), whose success closes the
/// breaker and whose failure opens it again.
///
/// What must never happen: an action attempted while its executor's breaker is open (but a rollback to stable,
/// which is always tried: it is the way out); two trial actions at once in half-open; a breaker that stays open
/// after a success; a failure of one executor counted against another.
public actor CircuitBreakers {
    private var health: [String: ExecutorHealth] = [:]
    /// Executors whose half-open trial is under way in this pass.
    private var trials: Set<String> = []

    public init() {}

    /// Starts a pass from what was recorded.
    public func load(_ recorded: [ExecutorHealth]) {
        health = Dictionary(recorded.map { ($0.executor, $0) }, uniquingKeysWith: { _, last in last })
        trials = []
    }

    /// Why an executor's actions may not run now.
    public struct Refusal: Sendable, Hashable, CustomStringConvertible {
        public enum Cause: Sendable, Hashable {
            /// The breaker is open: no action until the cool-down ends.
            case open
            /// The cool-down ended and another target's trial action is under way.
            case trialUnderWay
        }

        public var executor: String
        public var cause: Cause
        /// When to ask again.
        public var until: Date
        public var consecutiveFailures: Int
        public var lastFailure: String?

        public var description: String {
            let why =
                "executor \(executor)'s circuit breaker is open (\(ExecutorHealth.inARow(consecutiveFailures))"
                + (lastFailure.map { "; last: \($0)" } ?? "") + ")"
            return switch cause {
            case .open: why + " until \(GateEvaluator.format(until))"
            case .trialUnderWay: why + "; a trial action is under way"
            }
        }
    }

    /// Why `executor`'s actions may not run now, and until when; nil lets the action through (as the half-open
    /// trial when the cool-down is over).
    public func refusal(for executor: String, now: Date) -> Refusal? {
        guard let entry = health[executor], let until = entry.openUntil else { return nil }
        func refusal(_ cause: Refusal.Cause, until: Date) -> Refusal {
            Refusal(
                executor: executor, cause: cause, until: until, consecutiveFailures: entry.consecutiveFailures,
                lastFailure: entry.lastFailure)
        }
        if now < until { return refusal(.open, until: until) }
        if trials.contains(executor) { return refusal(.trialUnderWay, until: now.addingTimeInterval(10)) }
        trials.insert(executor)
        return nil
    }

    /// Whether `executor`'s next action is the half-open trial (which gets one try, no retries).
    public func inTrial(_ executor: String) -> Bool { trials.contains(executor) }

    /// Records an action's outcome; returns the breaker to write when it changed.
    public func record(
        _ executor: String, succeeded: Bool, failure: String, policy: CircuitBreakerPolicy, now: Date
    ) -> ExecutorHealth? {
        var entry = health[executor] ?? ExecutorHealth(executor: executor, updatedAt: now)
        let before = entry
        trials.remove(executor)
        if succeeded {
            entry.consecutiveFailures = 0
            entry.openUntil = nil
        } else {
            entry.consecutiveFailures += 1
            entry.lastFailure = failure
            // A failed trial, or one failure too many: open (again) for the cool-down.
            if before.openUntil != nil || entry.consecutiveFailures >= policy.failureThreshold {
                entry.openUntil = now.addingTimeInterval(policy.coolDown)
            }
        }
        guard entry.consecutiveFailures != before.consecutiveFailures || entry.openUntil != before.openUntil else {
            return nil
        }
        entry.updatedAt = now
        health[executor] = entry
        return entry
    }
}
