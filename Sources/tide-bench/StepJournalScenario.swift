import Foundation
import TideEngine
import TideGit
import TideManifest
import TideState

/// `stepJournal`: `targets` canaries each advance one step at once (a `set-weight` step: the target with its
/// rollout, a `step.succeeded` event, the action record) — through the step journal, which groups what
/// concurrent targets write into shared transactions, against the same writes one transaction each. Every step
/// is durable when its commit returns, in both. Goal: 1,000 canaries in ≤ 100 ms.
struct StepJournalScenario {
    var targets: Int
    var runs: Int

    func writes(round: Int) -> [StateWrite] {
        let now = Date(timeIntervalSince1970: 1_800_000_000 + Double(round))
        let revision = ObjectID(hex: String(repeating: "ab", count: 20))!
        return (0..<targets).map { n in
            let id = TargetID(service: SyntheticRepo.serviceName(n), environment: "prod")
            var rollout = Rollout(
                version: "1.1.0", config: .object(["replicas": .int(3)]), configDigest: "digest", revision: revision,
                previousVersion: "1.0.0", classification: .feature, reason: nil, step: 3, startedAt: now)
            rollout.weight = 10
            rollout.attempt = "0000beef"
            let actionID = "\(id.service).prod.\(revision.short).0000beef.2-set-weight-\(round)"
            return StateWrite(
                targets: [
                    LiveTarget(
                        id: id, executor: "local", phase: .progressing, version: "1.0.0", rollout: rollout,
                        updatedAt: now)
                ],
                events: [
                    Event(
                        time: now, kind: .stepSucceeded, target: id, revision: revision, version: "1.1.0",
                        message: "set-weight succeeded", details: .object(["actionId": .string(actionID)]))
                ],
                actions: [
                    ActionRecord(
                        id: actionID, target: id, action: "set-weight", status: .succeeded, startedAt: now,
                        finishedAt: now)
                ])
        }
    }

    func run(scratch: Scratch) async throws -> Result {
        let grouped = try SQLiteStateStore(path: scratch.file("journal-grouped.sqlite"))
        let journal = StepJournal(store: grouped)
        var round = 0
        var batches: [StateWrite] = []
        let timed = try await measure(
            runs: runs,
            prepare: {
                round += 1
                batches = writes(round: round)
            }
        ) {
            let writes = batches
            try await withThrowingTaskGroup(of: Void.self) { group in
                for write in writes { group.addTask { try await journal.commit(write) } }
                try await group.waitForAll()
            }
        }
        let transactions = await journal.transactions
        let committed = await journal.writes

        let single = try SQLiteStateStore(path: scratch.file("journal-single.sqlite"))
        let baseline = try await measure(
            runs: runs,
            prepare: {
                round += 1
                batches = writes(round: round)
            }
        ) {
            for write in batches { try await single.apply(write) }
        }
        let actions = try await grouped.events(EventQuery(kinds: [.stepSucceeded], limit: targets * (runs + 2)))
        guard actions.count == targets * (runs + 1) else {
            throw BenchError("\(actions.count) steps persisted, expected \(targets * (runs + 1))")
        }
        return Result(
            seconds: timed.median, runs: timed.all, baselineSeconds: baseline.median, baselineRuns: baseline.all,
            ratio: baseline.median / timed.median,
            detail: "\(targets) canaries advance one step at once: \(committed) writes in \(transactions) "
                + "transactions (baseline: one transaction per step)")
    }
}
