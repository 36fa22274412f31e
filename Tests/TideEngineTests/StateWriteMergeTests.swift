import Foundation
import Testing
import TideEngine
import TideGit
import TideManifest
import TideState

/// `StateWrite(merging:)` is how the step journal batches writes: a field it forgot would be silently dropped.
@Suite("TideEngine: merging state writes keeps every field")
struct StateWriteMergeTests {
    /// A write with every field set: a field added to `StateWrite` and not set here fails the test below, so
    /// whoever adds one also decides how writes of it merge.
    static func full(_ n: Int) -> StateWrite {
        let id = TargetID(service: "s\(n)", environment: "prod")
        let at = Date(timeIntervalSince1970: 1_800_000_000 + Double(n))
        let commit = ObjectID(hex: String(repeating: "\(n % 10)", count: 40))!
        var write = StateWrite(
            targets: [LiveTarget(id: id, executor: "x", phase: .healthy, updatedAt: at)],
            removedTargets: [TargetID(service: "gone\(n)", environment: "prod")],
            events: [Event(time: at, kind: .deploymentStarted, target: id, message: "e\(n)")],
            actions: [ActionRecord(id: "a\(n)", target: id, action: "deploy", status: .succeeded, startedAt: at)],
            repositoryStatus: RepositoryStatus(lastGoodRevision: commit, lastGoodAt: at),
            deployments: [
                DeploymentRecord(
                    id: "d\(n)", target: id, production: true, revision: commit, version: "1", previousVersion: nil,
                    classification: .feature, startedAt: at, finishedAt: at, succeeded: true)
            ],
            executorHealth: [ExecutorHealth(executor: "x\(n)", consecutiveFailures: n, updatedAt: at)],
            sourceStatus: SourceStatus(url: "file:///r\(n)"))
        write.suspensions = [Suspension(service: "s\(n)", environment: nil, actor: .tide, at: at)]
        write.liftedSuspensions = [Suspension(service: "l\(n)", environment: nil, actor: .tide, at: at)]
        return write
    }

    /// The fields of a write that hold nothing.
    static func empty(_ write: StateWrite) -> [String] {
        Mirror(reflecting: write).children.compactMap { child in
            let value = child.value
            let mirror = Mirror(reflecting: value)
            let isEmpty: Bool
            if mirror.displayStyle == .optional {
                isEmpty = mirror.children.isEmpty
            } else if let collection = value as? any Collection {
                isEmpty = collection.isEmpty
            } else {
                isEmpty = false
            }
            return isEmpty ? child.label ?? "?" : nil
        }
    }

    @Test("every field of every write survives a merge; lists keep their order, the last status wins")
    func exhaustive() throws {
        #expect(Self.empty(Self.full(1)) == [], "set the new field in full(_:) and merge it in StateWrite(merging:)")
        let merged = StateWrite(merging: [Self.full(1), Self.full(2)])
        #expect(Self.empty(merged) == [], "a field StateWrite(merging:) drops")
        #expect(merged.events.map(\.message) == ["e1", "e2"])
        #expect(merged.targets.map(\.id.service) == ["s1", "s2"])
        #expect(merged.actions.map(\.id) == ["a1", "a2"])
        #expect(merged.executorHealth.map(\.executor) == ["x1", "x2"])
        #expect(merged.suspensions.map(\.service) == ["s1", "s2"])
        #expect(merged.liftedSuspensions.map(\.service) == ["l1", "l2"])
        #expect(merged.sourceStatus?.url == "file:///r2")
        #expect(merged.repositoryStatus?.lastGoodRevision == ObjectID(hex: String(repeating: "2", count: 40)))
        // A later write of the same target wins, in the place of its first write.
        var again = Self.full(1)
        again.targets[0].version = "later"
        let twice = StateWrite(merging: [Self.full(1), Self.full(2), again])
        #expect(twice.targets.map(\.id.service) == ["s1", "s2"])
        #expect(twice.targets.first?.version == "later")
    }
}
