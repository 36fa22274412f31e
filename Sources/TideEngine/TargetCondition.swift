public import Foundation
public import TideManifest
public import TideState

/// What an on-call person needs to know about a target, in one word: the state `/metrics` exposes
/// (`tide_target_state`, `tide_targets`) and alerts are written against.
public enum TargetCondition: String, Sendable, CaseIterable, Codable {
    /// Healthy at what git asks for.
    case deployed
    /// A rollout moving by itself (a step, a timed pause, an analysis taking its rounds).
    case progressing
    /// A rollout waiting for a person: `tide pause`, an open `pause: {}`, an inconclusive analysis.
    case paused
    /// A rollout whose next step is overdue, or that has failed transiently for longer than its progress
    /// deadline.
    case stuck
    /// A deployment a gate holds (approval, bake, window, freeze, policy, an upstream environment, the database).
    case waiting
    /// A failed version git still asks for: held until `tide retry` or a commit that changes it.
    case held
    /// The last rollout failed (and git no longer asks for it, or the desired state is not known).
    case failed
    /// Rolled back to stable after a failure.
    case rolledBack = "rolled_back"
    /// Being taken back to stable (a failure, an abort, a pre-emption), which has not succeeded yet.
    case rollingBack = "rolling_back"
    /// `tide suspend`: Tide leaves it alone.
    case suspended
    /// Nothing deployed yet.
    case pending
    case removing

    /// A rollout's next step that is this much overdue is stuck (a pass that should have moved it did not).
    public static let overdue: TimeInterval = 300

    /// The condition of `target` at `now`, given what git asks for (`desired`, when known) and the suspensions.
    public static func of(
        _ target: LiveTarget, desired: DesiredState?, suspensions: [Suspension], now: Date
    ) -> TargetCondition {
        if suspensions.contains(where: { $0.covers(target.id) }) { return .suspended }
        switch target.phase {
        case .removing: return .removing
        case .rollingBack: return .rollingBack
        case .progressing:
            guard let rollout = target.rollout else { return .progressing }
            let deadline = desired?.progressDeadline(for: target.id.service).seconds ?? Resilience().progressDeadline
            if let since = rollout.stalledSince, now.timeIntervalSince(since) > deadline { return .stuck }
            if let due = rollout.nextDue ?? rollout.retryAt, now.timeIntervalSince(due) > overdue { return .stuck }
            // Held by `tide pause` or after an inconclusive analysis, or at an open pause waiting for a promote.
            if rollout.paused { return .paused }
            if let plan = rollout.plan, rollout.step < plan.steps.count,
                case .pause(nil) = plan.steps[rollout.step].step,
                !rollout.full
            {
                return .paused
            }
            return .progressing
        case .failed, .rolledBack:
            if let failed = target.failed, let wanted = desired?.target(target.id), wanted.version == failed.version,
                wanted.configDigest == failed.configDigest, target.waiting == nil
            {
                return .held
            }
            if target.waiting != nil { return .waiting }
            return target.phase == .failed ? .failed : .rolledBack
        case .pending:
            return target.waiting != nil ? .waiting : .pending
        case .healthy:
            return target.waiting != nil ? .waiting : .deployed
        }
    }
}
