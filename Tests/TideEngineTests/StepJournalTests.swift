import Foundation
import Testing
import TideEngine
import TideManifest
import TideState
import TideTestSupport

@Suite("TideEngine: the step journal groups concurrent targets' writes and loses none")
struct StepJournalTests {
    static func write(_ index: Int, at now: Date) -> StateWrite {
        let id = TargetID(service: "svc-\(index)", environment: "prod")
        return StateWrite(
            targets: [LiveTarget(id: id, executor: "x", phase: .progressing, version: "1.0.0", updatedAt: now)],
            events: [Event(time: now, kind: .stepSucceeded, target: id, version: "1.0.0", message: "set-weight 10")],
            actions: [
                ActionRecord(
                    id: "svc-\(index).prod.step", target: id, action: "set-weight", status: .succeeded, startedAt: now,
                    finishedAt: now)
            ])
    }

    @Test("500 targets committing at once: every write is durable when commit returns, in fewer transactions")
    func groupCommit() async throws {
        let scratch = try TemporaryDirectory("tide-journal")
        let store = try SQLiteStateStore(path: scratch.appending("state.sqlite"))
        let journal = StepJournal(store: store)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<500 {
                group.addTask {
                    try await journal.commit(Self.write(index, at: now))
                    // Durable once commit returns: another reader sees it.
                    let seen = try await store.action("svc-\(index).prod.step")
                    #expect(seen?.status == .succeeded)
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.liveTargets().count == 500)
        #expect(try await store.events(EventQuery(limit: 1000)).count == 500)
        let transactions = await journal.transactions
        #expect(await journal.writes == 500)
        #expect(transactions < 500, "grouped: \(transactions) transactions for 500 writes")
    }

    @Test("merged writes keep each target's latest state and every event in order")
    func merging() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var second = Self.write(1, at: now.addingTimeInterval(1))
        second.targets[0].version = "1.1.0"
        let merged = StateWrite(merging: [Self.write(1, at: now), Self.write(2, at: now), second])
        #expect(merged.targets.map(\.id.service) == ["svc-1", "svc-2"])
        #expect(merged.targets[0].version == "1.1.0")
        #expect(merged.events.count == 3)
        #expect(merged.events.map(\.time) == [now, now, now.addingTimeInterval(1)])
    }
}
