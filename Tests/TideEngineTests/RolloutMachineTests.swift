import Foundation
import Testing
import TideEngine
import TideGit
import TideManifest
import TideState

/// A strategy written as a user of the engine would add one — the one-file rule: this type is all the engine needs
/// (a manifest type in TideManifest/Strategies and a registration line make it selectable from YAML). It walks
/// traffic over in equal steps with a health check after each.
struct LinearStrategy: RolloutStrategy {
    static let rank = CanaryStrategy.rank
    var name: StrategyType { .canary }
    var stepCount: Int

    var plannedSteps: [PlannedStep] {
        var steps = Self.candidate
        for index in 1..<stepCount {
            let weight = 100 * index / stepCount
            steps += [.action(.setWeight, weight: weight), .action(.health, weight: weight)]
        }
        return Self.numbered(steps + Self.promotion)
    }
}

@Suite("TideEngine: the rollout state machine, without I/O")
struct RolloutMachineTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    static func rollout(previous: String? = "1.0.0") -> Rollout {
        Rollout(
            version: "1.1.0", config: .object([:]), configDigest: "c",
            revision: ObjectID(hex: String(repeating: "a", count: 40))!,
            previousVersion: previous, classification: .feature, reason: nil, startedAt: start)
    }

    /// Runs `plan` to the end as if every action succeeded, every analysis passed and every timed pause elapsed
    /// (an open pause is promoted past, as `tide promote` does); returns what happened, in order.
    static func walk(_ plan: RolloutPlan, full: Bool = false) -> [String] {
        var rollout = Self.rollout()
        rollout.plan = plan
        rollout.full = full
        var now = start
        var log: [String] = []
        for _ in 0..<100 {
            switch RolloutMachine.next(rollout, plan: plan, now: now, promoteCommand: "tide promote") {
            case .complete:
                return log
            case .act(let action, let weight, _):
                log.append("\(action.rawValue) \(weight)")
                rollout = RolloutMachine.advanced(rollout, plan: plan, at: now)
                #expect(rollout.weight == ([.health, .scaleDown].contains(action) ? rollout.weight : weight))
            case .analyse(let name):
                log.append("analysis \(name)")
                rollout = RolloutMachine.advanced(rollout, plan: plan, at: now)
            case .skip(let why):
                log.append("skip \(why)")
                rollout = RolloutMachine.advanced(rollout, plan: plan, at: now)
            case .wait(let due?, _):
                log.append("wait \(Int(due.timeIntervalSince(now)))")
                now = due
            case .wait(nil, _):
                log.append("wait for a person")
                rollout.step += 1  // tide promote
                rollout.stepStartedAt = now
            case .held:
                Issue.record("held without tide pause")
                return log
            }
        }
        Issue.record("did not complete")
        return log
    }

    @Test("every built-in strategy walks its steps to the end, in order")
    func everyStrategy() {
        let canary = CanaryStrategy(steps: [
            .setWeight(10), .pause(300), .analysis("errors"), .setWeight(5), .pause(nil),
        ])
        var blueGreen = BlueGreenStrategy()
        blueGreen.previewAnalysis = "smoke"
        blueGreen.autoPromotionAfter = 60
        let cases: [(StrategySpec, [String])] = [
            (StrategySpec(), ["deploy 100", "health 100"]),
            (
                .rolling(RollingStrategy(batches: [50, 100])),
                ["deploy 50", "health 50", "promote 100", "health 100"]
            ),
            (
                .blueGreen(blueGreen),
                [
                    "deploy 0", "health 0", "analysis smoke", "wait 60", "skip done", "promote 100", "health 100",
                    "wait 30", "skip done", "scale-down 100",
                ]
            ),
            (
                .canary(canary),
                [
                    "deploy 0", "health 0", "set-weight 10", "wait 300", "skip done", "analysis errors",
                    // Weights may go down (as in Argo Rollouts).
                    "set-weight 5", "wait for a person", "promote 100", "health 100",
                ]
            ),
            (
                .shadow(ShadowStrategy(analysis: "errors", mirror: 20, duration: 600)),
                [
                    "deploy 0", "health 0", "mirror 20", "wait 600", "skip done", "analysis errors", "promote 100",
                    "health 100",
                ]
            ),
            (
                .ab(ABStrategy(match: .userKey(header: "X-User", percent: 30), duration: 60, analysis: "compare")),
                [
                    "deploy 0", "health 0", "split 30", "wait 60", "skip done", "analysis compare", "promote 100",
                    "health 100",
                ]
            ),
        ]
        for (strategy, expected) in cases {
            let plan = RolloutPlan.of(strategy, firstDeployment: false)
            #expect(plan.strategy == strategy.type)
            #expect(Self.walk(plan) == expected, "\(strategy.type)")
        }
    }

    @Test("a first deployment runs recreate whatever the manifest says: nothing runs to compare with")
    func firstDeployment() {
        let plan = RolloutPlan.of(.canary(CanaryStrategy(steps: [.setWeight(10)])), firstDeployment: true)
        #expect(plan.strategy == .recreate)
        #expect(!plan.keepsStable)
        #expect(Self.walk(plan) == ["deploy 100", "health 100"])
    }

    @Test("promote --full skips traffic steps, pauses and analyses, never deploy, health or promote")
    func full() {
        let plan = RolloutPlan.of(
            .canary(CanaryStrategy(steps: [.setWeight(10), .pause(nil), .analysis("a"), .setWeight(50)])),
            firstDeployment: false)
        #expect(
            Self.walk(plan, full: true) == [
                "deploy 0", "health 0", "skip skipped (promote --full)", "skip skipped (promote --full)",
                "skip skipped (promote --full)", "skip skipped (promote --full)", "promote 100", "health 100",
            ])
    }

    @Test("tide pause holds at any step; a timed pause is not over a second early")
    func heldAndTimed() {
        let plan = RolloutPlan.of(.canary(CanaryStrategy(steps: [.pause(300)])), firstDeployment: false)
        var rollout = Self.rollout()
        rollout.step = 2
        guard
            case .wait(let due?, _) = RolloutMachine.next(
                rollout, plan: plan, now: Self.start.addingTimeInterval(299), promoteCommand: "p")
        else {
            Issue.record("a timed pause waits until it is due")
            return
        }
        #expect(due == Self.start.addingTimeInterval(300))
        #expect(
            RolloutMachine.next(rollout, plan: plan, now: Self.start.addingTimeInterval(300), promoteCommand: "p")
                == .skip("done"))
        rollout.paused = true
        rollout.heldBy = "ana"
        guard case .held = RolloutMachine.next(rollout, plan: plan, now: Self.start, promoteCommand: "p") else {
            Issue.record("tide pause must hold")
            return
        }
    }

    @Test("the background analysis measures from the candidate's check to promotion, also for a person, never held")
    func background() {
        let plan = RolloutPlan.of(
            .canary(CanaryStrategy(steps: [.setWeight(10), .pause(nil)], backgroundAnalysis: "bg")),
            firstDeployment: false)
        var rollout = Self.rollout()
        let measured = (0...plan.steps.count).map { step -> Bool in
            rollout.step = step
            return RolloutMachine.measuresInBackground(rollout, plan: plan)
        }
        // deploy, health: not yet; set-weight, open pause, promote: yes; health after promotion, done: no.
        #expect(measured == [false, false, true, true, true, false, false])
        rollout.step = 3
        rollout.paused = true  // an inconclusive analysis waits for a person: the background goes on
        #expect(RolloutMachine.measuresInBackground(rollout, plan: plan))
        rollout.heldBy = "ana"  // tide pause: nothing moves
        #expect(!RolloutMachine.measuresInBackground(rollout, plan: plan))
    }

    @Test("a strategy written in one file (LinearStrategy, above) runs through the same machine")
    func exampleStrategy() {
        let plan = LinearStrategy(stepCount: 4).plan
        #expect(
            Self.walk(plan) == [
                "deploy 0", "health 0", "set-weight 25", "health 25", "set-weight 50", "health 50", "set-weight 75",
                "health 75", "promote 100", "health 100",
            ])
        #expect(plan.label(2) == "step 3/10: set-weight 25%")
        #expect(plan.digest != LinearStrategy(stepCount: 5).plan.digest, "other steps, other digest")
        #expect(plan.digest == LinearStrategy(stepCount: 4).plan.digest)
    }

    @Test("the plan a rollout froze survives encoding, and its digest tells a changed strategy apart")
    func frozen() throws {
        let canary = StrategySpec.canary(CanaryStrategy(steps: [.setWeight(10), .pause(nil)]))
        var rollout = Self.rollout()
        rollout.plan = RolloutPlan.of(canary, firstDeployment: false)
        let decoded = try JSONDecoder().decode(Rollout.self, from: JSONEncoder().encode(rollout))
        #expect(decoded.plan == rollout.plan)
        #expect(decoded.runsSameSteps(as: canary))
        #expect(!decoded.runsSameSteps(as: StrategySpec()))
        #expect(!decoded.runsSameSteps(as: .canary(CanaryStrategy(steps: [.setWeight(20), .pause(nil)]))))
        // The frozen steps run, whatever the manifest says now.
        #expect(decoded.steps(declared: StrategySpec()).strategy == .canary)
    }
}
