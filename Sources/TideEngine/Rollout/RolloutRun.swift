import Foundation
import TideExecutors
import TideManifest
import TideState

/// One rollout as a pass runs it: what it needs, and what changes as its steps run.
struct RolloutRun {
    let target: DesiredTarget
    let desired: DesiredState
    let executor: any Executor
    /// Its frozen steps.
    let plan: RolloutPlan
    let deadline: (seconds: Double, abort: Bool)
    var rollout: Rollout
    var state: LiveTarget
    /// Executor calls this pass made for it.
    var calls = 0
    /// When the background analysis measures next (the pass is due again then).
    var backgroundDue: Date?

    var id: TargetID { target.id }
    /// The label of the step it is at.
    var label: String { plan.label(rollout.step) }
    var promoteCommand: String { "tide promote \(id.service) --env \(id.environment)" }
}

/// How a step of a rollout ends: the one result each step gives, written in one place (`Reconciler.finish`).
enum StepResult {
    /// Done; the next step follows in this pass.
    case advanced
    /// It goes on at a later pass (`until`: when it is due by itself; nil: when a person or a change moves it).
    case wait(until: Date?, message: String)
    /// An analysis could not decide: a person does (tide resume, promote or abort).
    case pauseForPerson(what: String, summary: String)
    /// The step failed: the deployment fails and the rollout is taken back where that is the rule.
    case fail(message: String, details: [String: JSONValue], action: ActionRecord?)
    /// Already recorded, with this outcome (a transient failure's wait, a yield to an operator).
    case recorded(TargetOutcome)
    /// Every step is done.
    case complete
}

extension RolloutRunner {
    /// Writes how a step ended; the target's outcome, or nil when the rollout goes on in this pass.
    func finish(_ result: StepResult, _ run: inout RolloutRun) async throws -> TargetOutcome? {
        switch result {
        case .advanced:
            return nil
        case .wait(let due, let message):
            return try await progressing(
                background: run.backgroundDue, run.id, run.rollout, state: &run.state, message: message,
                executorCalls: run.calls, nextDue: due)
        case .pauseForPerson(let what, let summary):
            return try await pauseForPerson(
                what, summary: summary, target: run.id, rollout: &run.rollout, state: &run.state, calls: run.calls,
                background: run.backgroundDue)
        case .fail(let message, let details, let action):
            return try await failRollout(
                target: run.target, rollout: run.rollout, state: run.state, desired: run.desired, message: message,
                details: details, action: action, executor: run.executor, calls: run.calls)
        case .recorded(let outcome):
            return outcome
        case .complete:
            return try await complete(
                target: run.target, rollout: run.rollout, state: run.state, desired: run.desired, calls: run.calls)
        }
    }

    /// What an analysis verdict means for the rollout — the one reading of a verdict, for a step's analysis and
    /// for the background one (which runs beside the steps: passing or waiting lets them go on).
    func result(
        of verdict: AnalysisVerdict, analysis name: String, background: Bool, _ run: inout RolloutRun
    ) async throws -> StepResult {
        let what = background ? "background analysis \(name)" : "analysis \(name)"
        switch verdict {
        case .failed(let summary):
            return .fail(message: "\(what) failed: \(summary)", details: ["analysis": .string(name)], action: nil)
        case .inconclusive(let summary):
            guard background else { return .pauseForPerson(what: what, summary: summary) }
            // Its remaining rounds go on while a person decides: the pass is due again for the next one.
            run.backgroundDue = nextRound(of: run.rollout.background, analysis: run.desired.analyses[name])
            return run.rollout.paused ? .advanced : .pauseForPerson(what: what, summary: summary)
        case .wait(let due, let summary):
            guard !background else {
                run.backgroundDue = due
                return .advanced
            }
            try await journal.commit(StateWrite(targets: [run.state]))
            return .wait(
                until: due,
                message: "weight \(run.rollout.weight), analysis \(name): \(summary); next measurement at "
                    + GateEvaluator.format(due))
        case .passed(let summary):
            guard !background else {
                run.backgroundDue = nil
                return .advanced
            }
            let label = run.label
            run.rollout = RolloutMachine.advanced(run.rollout, plan: run.plan, at: clock.now())
            run.state.rollout = run.rollout
            try await commitStep(
                run.state, .stepSucceeded, run.id, run.rollout, at: clock.now(), "\(label): passed (\(summary))")
            return .advanced
        }
    }
}
