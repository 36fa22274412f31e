public import Foundation
public import TideManifest
public import TideState

/// The rollout state machine, without I/O: given a rollout, its frozen plan and the time, what happens next — and
/// how the rollout changes when it happened. The reconciler carries out what it says (executor calls, analyses,
/// writes) and feeds the results back.
///
/// What must never happen: a step skipped that was not done (a pause is skipped only by `tide promote`, a traffic
/// step only by `promote --full`); a step run twice in one attempt after it succeeded; promotion while the
/// background analysis has not measured every metric; a rollout that waits for a person taking rounds it cannot
/// act on (the background analysis keeps measuring, and can still abort it).
public enum RolloutMachine {
    /// What the rollout does next.
    public enum Next: Equatable, Sendable {
        /// Run this executor action (step `index`).
        case act(ExecutorAction, weight: Int, traffic: JSONValue?)
        /// Run the analysis of step `index`.
        case analyse(String)
        /// The step needs nothing more (a pause that ended, or a step `promote --full` skips): mark it done.
        case skip(String)
        /// Wait: until `due`, or (nil) for a person.
        case wait(until: Date?, String)
        /// Held by `tide pause`, or by a person after an inconclusive analysis.
        case held(String)
        /// Every step is done.
        case complete
    }

    /// The next thing rollout `rollout` does under `plan` at `now`.
    public static func next(_ rollout: Rollout, plan: RolloutPlan, now: Date, promoteCommand: String) -> Next {
        let index = rollout.step
        guard index < plan.steps.count else { return .complete }
        let label = plan.label(index)
        if rollout.paused { return .held("paused at \(label) (weight \(rollout.weight)); tide resume continues") }
        switch plan.steps[index].step {
        case .pause(let seconds):
            if rollout.full { return .skip("skipped (promote --full)") }
            guard let seconds else {
                return .wait(until: nil, "\(label) at weight \(rollout.weight), waiting for \(promoteCommand)")
            }
            let due = rollout.stepStartedAt.addingTimeInterval(seconds)
            if now >= due { return .skip("done") }
            return .wait(until: due, "\(label) at weight \(rollout.weight), until \(GateEvaluator.format(due))")
        case .analysis(let name):
            return rollout.full ? .skip("skipped (promote --full)") : .analyse(name)
        case .action(let action, let weight, let traffic):
            if rollout.full && [.setWeight, .mirror, .split].contains(action) {
                return .skip("skipped (promote --full)")
            }
            return .act(action, weight: weight, traffic: traffic)
        }
    }

    /// The rollout after step `rollout.step` ended well at `at`.
    public static func advanced(_ rollout: Rollout, plan: RolloutPlan, at: Date) -> Rollout {
        var next = rollout
        if rollout.step < plan.steps.count, case .action(let action, let weight, _) = plan.steps[rollout.step].step,
            [.deploy, .setWeight, .promote, .split, .mirror].contains(action)
        {
            // The share of traffic the candidate sees from now on (mirrored copies included).
            next.weight = weight
        }
        if rollout.step < plan.steps.count, case .analysis = plan.steps[rollout.step].step { next.analysis = nil }
        next.transientFailures = nil
        next.stalledSince = nil
        next.retryAt = nil
        next.retryReason = nil
        next.step += 1
        next.stepStartedAt = at
        return next
    }

    /// Whether the background analysis measures at this step: from the candidate's first check on, until the
    /// rollout is promoted, also while it waits for a person (it can still abort it) — but not while an operator
    /// holds it with `tide pause` (nothing moves then), nor after `promote --full`.
    public static func measuresInBackground(_ rollout: Rollout, plan: RolloutPlan) -> Bool {
        guard plan.backgroundAnalysis != nil, !rollout.full, rollout.heldBy == nil, rollout.step >= 2 else {
            return false
        }
        return rollout.step <= promotionIndex(plan)
    }

    /// Whether the rollout has made no progress for longer than `deadline` (seconds): it is stuck (and aborted,
    /// with `progressDeadlineAbort`).
    ///
    /// Progress is a step that ends; a timed pause and an analysis taking its rounds are progress by definition
    /// (their own durations and limits bound them). What stalls is an action that keeps failing transiently,
    /// counted from its first transient failure. Time a rollout waits for a person — an open pause, an
    /// inconclusive analysis, `tide pause` — never counts, as in Argo Rollouts. Tide's own downtime never counts:
    /// an action that has not failed yet is not stalled.
    public static func stalled(_ rollout: Rollout, plan: RolloutPlan, now: Date, deadline: Double) -> Bool {
        guard rollout.step < plan.steps.count, rollout.heldBy == nil, !rollout.paused,
            rollout.step <= promotionIndex(plan)
        else {
            // After promotion the candidate is what serves: going back is no longer the safe way out.
            return false
        }
        if case .action = plan.steps[rollout.step].step, let since = rollout.stalledSince {
            return now.timeIntervalSince(since) > deadline
        }
        return false
    }

    /// Whether step `rollout.step` gives the candidate all the traffic (`promote`, or a canary's `setWeight: 100`),
    /// which needs the background analysis' proof first.
    public static func promotes(_ rollout: Rollout, plan: RolloutPlan) -> Bool {
        guard rollout.step < plan.steps.count, case .action(let action, let weight, _) = plan.steps[rollout.step].step
        else { return false }
        return action == .promote || (action == .setWeight && weight >= 100)
    }

    /// Whether the rollout gave the candidate all the traffic already (its promote step is done): from then on,
    /// going back to stable is no longer the safe way out.
    public static func isPromoted(_ rollout: Rollout, plan: RolloutPlan) -> Bool {
        let index = promotionIndex(plan)
        return index < plan.steps.count && rollout.step > index
    }

    /// The index of the promote step (the steps' count when there is none).
    static func promotionIndex(_ plan: RolloutPlan) -> Int {
        plan.steps.firstIndex { if case .action(.promote, _, _) = $0.step { true } else { false } } ?? plan.steps.count
    }
}
