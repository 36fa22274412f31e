import Foundation
import Testing
import TideDocuments
import TideGit
import TideManifest
import TideState

@testable import TideCLI

@Suite("tide status: the DETAIL column")
struct StatusDetailTests {
    @Test("a rollout shows step, weight, pause and what its analyses measured")
    func rolloutDetail() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var rollout = Rollout(
            version: "2.1.0", config: .object([:]), configDigest: "d", revision: ObjectID.blobHash(of: [1]),
            previousVersion: "2.0.0", classification: .feature, reason: nil, step: 3, startedAt: now)
        rollout.weight = 25
        rollout.paused = true
        var run = AnalysisRun(name: "errors", step: 3, startedAt: now)
        run.rounds = 2
        run.measurements = [
            .init(metric: "error-rate", round: 0, at: now, phase: .success, value: .double(0.001), message: nil),
            .init(metric: "error-rate", round: 1, at: now, phase: .inconclusive, value: nil, message: "no data"),
        ]
        rollout.analysis = run
        let target = LiveTarget(
            id: TargetID(service: "payments", environment: "prod"), executor: "local", phase: .progressing,
            version: "2.0.0", rollout: rollout, updatedAt: now)
        #expect(
            StatusDocument.detail(for: target)
                == "rolling out 2.1.0, step 4, weight 25%; paused; analysis errors: 2 round(s) (1 success, "
                + "1 inconclusive), last error-rate = - inconclusive")
    }

    @Test("with the service's strategy, a canary's step is named as the manifest wrote it")
    func stepAsWritten() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var rollout = Rollout(
            version: "2.1.0", config: .object([:]), configDigest: "d", revision: ObjectID.blobHash(of: [1]),
            previousVersion: "2.0.0", classification: .feature, reason: nil, step: 3, startedAt: now)
        rollout.weight = 10
        let target = LiveTarget(
            id: TargetID(service: "payments", environment: "prod"), executor: "local", phase: .progressing,
            version: "2.0.0", rollout: rollout, updatedAt: now)
        let strategy = StrategySpec.canary(
            CanaryStrategy(steps: [.setWeight(10), .pause(600), .setWeight(50), .pause(nil)]))
        #expect(
            StatusDocument.detail(for: target, strategy: strategy)
                == "rolling out 2.1.0, step 2/4: pause 10m, weight 10%")
        rollout.step = 0
        let starting = LiveTarget(
            id: target.id, executor: "local", phase: .progressing, version: "2.0.0", rollout: rollout, updatedAt: now)
        #expect(
            StatusDocument.detail(for: starting, strategy: strategy).hasPrefix(
                "rolling out 2.1.0, deploy the candidate")
        )
    }

    @Test("a timed step says when it is due; a judged analysis shows its score")
    func dueAndJudgement() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var rollout = Rollout(
            version: "2.1.0", config: .object([:]), configDigest: "d", revision: ObjectID.blobHash(of: [1]),
            previousVersion: "2.0.0", classification: .feature, reason: nil, step: 2, startedAt: now)
        rollout.weight = 30
        rollout.nextDue = now.addingTimeInterval(600)
        var run = AnalysisRun(name: "compare", step: 2, startedAt: now)
        run.rounds = 3
        run.judgement = .object(["score": .double(66.7), "verdict": .string("marginal")])
        rollout.analysis = run
        let target = LiveTarget(
            id: TargetID(service: "payments", environment: "prod"), executor: "local", phase: .progressing,
            version: "2.0.0", rollout: rollout, updatedAt: now)
        #expect(
            StatusDocument.detail(for: target)
                == "rolling out 2.1.0, step 3, weight 30%; next step due 2027-01-15T08:10:00Z; analysis compare: "
                + "3 round(s), judge: score 67, marginal")
    }

    @Test("a rolled-back target says which version failed and why")
    func rolledBack() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let target = LiveTarget(
            id: TargetID(service: "payments", environment: "prod"), executor: "local", phase: .rolledBack,
            version: "2.0.0",
            failed: FailedAttempt(
                version: "2.1.0", configDigest: "d", revision: ObjectID.blobHash(of: [1]),
                message: "analysis errors failed", at: now), updatedAt: now)
        #expect(StatusDocument.detail(for: target) == "failed 2.1.0: analysis errors failed")
    }
}
