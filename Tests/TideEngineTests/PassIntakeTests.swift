import Foundation
import Synchronization
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

/// What a pass under way takes in (`tide run`): an operator's control of a target beside the pass, a new plan
/// asked for while targets run, and the state lock shared inside the process — never with another one.
///
/// What must never happen: a queued action run on live state an operator changed after the plan read it (the
/// operator's change overwritten); a control and a run of one target at once; another process writing while the
/// pass or a control here holds the lock; a request for a plan lost.
@Suite("TideEngine: a pass takes in controls and new plans while its targets run")
struct PassIntakeTests {
    /// Holds `deploy` of `a-slow` until released; records every action.
    final class Holding: Executor, ExecutorFactory, Sendable {
        let held = Mutex(false)
        let released = Mutex(false)
        let calls = Mutex<[String]>([])

        func perform(_ request: ActionRequest) async -> ActionResult {
            calls.withLock { $0.append("\(request.action.rawValue) \(request.service) \(request.version)") }
            if request.service == "a-slow" && request.action == .deploy && request.version == "2.0" {
                held.withLock { $0 = true }
                while !released.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(5)) }
            }
            return ActionResult(outcome: .succeeded)
        }

        func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor { self }

        func waitUntilHeld() async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            while !held.withLock({ $0 }) {
                guard ContinuousClock.now < deadline else { throw ControlError(description: "a-slow never started") }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    static func files(aSlow: String, b: String, bStrategy: String = "", bDependsOn: [String] = []) -> [String: String] {
        [
            "base.yaml": """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: local}
            spec: {type: command, command: ["/bin/true"]}
            ---
            apiVersion: tide/v1
            kind: Environment
            metadata: {name: prod}
            spec: {}

            """,
            "a-slow.yaml": serviceYAML("a-slow", version: aSlow),
            "b.yaml": serviceYAML("b", version: b, dependsOn: bDependsOn) + bStrategy,
        ]
    }

    static let canary = "  strategy: {type: canary, steps: [{setWeight: 20}, {pause: {}}, {setWeight: 60}]}\n"
    static let b = TargetID(service: "b", environment: "prod")

    @Test("a control of a target waiting in the queue: its planned action is dropped and the target planned again")
    func staleActionDropped() async throws {
        let executor = Holding()
        let h = try EngineHarness(
            store: .inMemory, files: Self.files(aSlow: "1.0", b: "1.0", bStrategy: Self.canary), executors: executor)
        let reconciler = try h.makeReconciler(concurrency: 1)
        _ = try await reconciler.reconcile(lockTimeout: 1)
        try await h.fixture.commit("b 2.0", files: Self.files(aSlow: "1.0", b: "2.0", bStrategy: Self.canary))
        _ = try await reconciler.reconcile(lockTimeout: 1)
        let waiting = await h.store.liveTarget(Self.b)
        #expect(waiting?.phase == .progressing, "b waits at its pause: \(String(describing: waiting))")

        // A pass whose first target (one at a time) holds: b's action waits in the queue meanwhile.
        try await h.fixture.commit("a-slow 2.0", files: Self.files(aSlow: "2.0", b: "2.0", bStrategy: Self.canary))
        let pass = Task { try await reconciler.reconcile(lockTimeout: 1) }
        try await executor.waitUntilHeld()
        let words = try await reconciler.control(
            .promote(full: false), service: "b", environment: "prod", by: Actor(user: "alice"))
        #expect(words.contains("promoted past"), "\(words)")
        executor.released.withLock { $0 = true }
        let report = try await pass.value

        // Run on the state it was planned from, b's action would have found it paused and written that back.
        let outcome = try #require(report.outcomes.first { $0.target == Self.b })
        #expect(outcome.result == .deployed, "\(report.outcomes)")
        let b = await h.store.liveTarget(Self.b)
        #expect(b?.version == "2.0" && b?.phase == .healthy, "\(String(describing: b))")
        #expect(executor.calls.withLock { $0 }.contains("set-weight b 2.0"))
    }

    @Test("replan(awaiting:) during a pass: the target's outcome from a new plan, beside the held one; nil after")
    func replanDuringAPass() async throws {
        let executor = Holding()
        let h = try EngineHarness(store: .inMemory, files: Self.files(aSlow: "1.0", b: "1.0"), executors: executor)
        let reconciler = h.reconciler
        _ = try await reconciler.reconcile(lockTimeout: 1)
        try await h.fixture.commit("a-slow 2.0", files: Self.files(aSlow: "2.0", b: "1.0"))
        let pass = Task { try await reconciler.reconcile(lockTimeout: 1) }
        try await executor.waitUntilHeld()

        // A push while a-slow holds: b deploys now, not when the pass ends.
        try await h.fixture.commit("b 2.0", files: Self.files(aSlow: "2.0", b: "2.0"))
        let outcome = await reconciler.replan(awaiting: Self.b)
        #expect(outcome?.result == .deployed, "\(String(describing: outcome))")
        #expect(executor.calls.withLock { $0 }.contains("health b 2.0"))
        #expect(!executor.calls.withLock { $0 }.contains("health a-slow 2.0"), "a-slow is still held")
        executor.released.withLock { $0 = true }
        let report = try await pass.value
        #expect(report.outcomes.map(\.result) == [.deployed, .deployed], "\(report.outcomes)")
        #expect(report.head == (try await h.fixture.head()), "the report names the head the pass planned last")
        #expect(await reconciler.replan(awaiting: Self.b) == nil, "no pass under way")
        #expect(reconciler.replan() == false)
    }

    @Test("a plan made while a target runs keeps its dependents waiting for it (dependsOn across plans)")
    func dependsOnAcrossPlans() async throws {
        let executor = Holding()
        let h = try EngineHarness(
            store: .inMemory, files: Self.files(aSlow: "1.0", b: "1.0", bDependsOn: ["a-slow"]), executors: executor)
        let reconciler = h.reconciler
        _ = try await reconciler.reconcile(lockTimeout: 1)
        try await h.fixture.commit("a-slow 2.0", files: Self.files(aSlow: "2.0", b: "1.0", bDependsOn: ["a-slow"]))
        let pass = Task { try await reconciler.reconcile(lockTimeout: 1) }
        try await executor.waitUntilHeld()

        // b 2.0 is pushed while a-slow (what b depends on) still rolls out: b waits for it.
        try await h.fixture.commit("b 2.0", files: Self.files(aSlow: "2.0", b: "2.0", bDependsOn: ["a-slow"]))
        async let outcome = reconciler.replan(awaiting: Self.b)
        try await Task.sleep(for: .milliseconds(300))
        #expect(!executor.calls.withLock { $0 }.contains("deploy b 2.0"), "b started before what it depends on")
        executor.released.withLock { $0 = true }
        #expect(await outcome?.result == .deployed)
        let calls = executor.calls.withLock { $0 }
        let bFirst = try #require(calls.firstIndex(of: "deploy b 2.0"))
        #expect(try #require(calls.firstIndex(of: "health a-slow 2.0")) < bFirst, "\(calls)")
        _ = try await pass.value
    }

    /// Holds `deploy` of each service named in `holding` until it is taken out; records every action.
    final class PerService: Executor, ExecutorFactory, Sendable {
        let holding: Mutex<Set<String>>
        let calls = Mutex<[String]>([])

        init(holding: Set<String>) { self.holding = Mutex(holding) }

        func perform(_ request: ActionRequest) async -> ActionResult {
            calls.withLock { $0.append("\(request.action.rawValue) \(request.service) \(request.version)") }
            while request.action == .deploy && holding.withLock({ $0.contains(request.service) }) {
                try? await Task.sleep(for: .milliseconds(5))
            }
            return ActionResult(outcome: .succeeded)
        }

        func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor { self }

        func waitFor(_ call: String) async throws {
            let deadline = ContinuousClock.now + .seconds(10)
            while !calls.withLock({ $0.contains(call) }) {
                guard ContinuousClock.now < deadline else { throw ControlError(description: "no \(call)") }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    @Test(
        "a free slot goes to the push with the fewest targets running: a later push does not wait for all of an earlier one"
    )
    func fairAcrossPushes() async throws {
        let base = Self.files(aSlow: "1.0", b: "1.0")["base.yaml"]!
        var files = ["base.yaml": base]
        // Planned in name order: s1 and s2 take the two slots, z waits.
        for name in ["s1", "s2", "z"] { files["\(name).yaml"] = serviceYAML(name, version: "1.0") }
        let executor = PerService(holding: ["s1", "s2"])
        let h = try EngineHarness(store: .inMemory, files: files, executors: executor)
        let reconciler = try h.makeReconciler(concurrency: 2)
        let pass = Task { try await reconciler.reconcile(lockTimeout: 1) }
        try await executor.waitFor("deploy s1 1.0")
        try await executor.waitFor("deploy s2 1.0")

        // Both slots are the first push's; z waits. A second push adds e.
        files["e.yaml"] = serviceYAML("e", version: "1.0")
        try await h.fixture.commit("e", files: files)
        #expect(reconciler.replan())
        // The second push has nothing running: it gets a target going beside the two held ones, at once.
        try await executor.waitFor("deploy e 1.0")
        #expect(!executor.calls.withLock { $0 }.contains("deploy z 1.0"), "z is still the first push's to wait")
        _ = executor.holding.withLock { $0.remove("s2") }
        try await executor.waitFor("deploy z 1.0")
        executor.holding.withLock { $0.removeAll() }
        let report = try await pass.value
        let calls = executor.calls.withLock { $0 }
        #expect(
            try #require(calls.firstIndex(of: "deploy e 1.0")) < (try #require(calls.firstIndex(of: "deploy z 1.0"))),
            "the second push's first target waited for the first push's: \(calls)")
        #expect(Set(report.outcomes.map(\.target.service)) == ["s1", "s2", "z", "e"])
        #expect(report.outcomes.allSatisfy { $0.result == .deployed }, "\(report.outcomes) \(calls)")
    }

    @Test("the state lock is shared by the pass and a control here, and held against another process throughout")
    func lockSharedInProcessOnly() async throws {
        let executor = Holding()
        let h = try EngineHarness(
            store: .sqliteFile, files: Self.files(aSlow: "1.0", b: "1.0", bStrategy: Self.canary), executors: executor)
        let reconciler = h.reconciler
        _ = try await reconciler.reconcile(lockTimeout: 1)
        try await h.fixture.commit("b 2.0", files: Self.files(aSlow: "1.0", b: "2.0", bStrategy: Self.canary))
        _ = try await reconciler.reconcile(lockTimeout: 1)
        try await h.fixture.commit("a-slow 2.0", files: Self.files(aSlow: "2.0", b: "2.0", bStrategy: Self.canary))
        let pass = Task { try await reconciler.reconcile(lockTimeout: 1) }
        try await executor.waitUntilHeld()

        // Another process's handle on the same file (a separate flock) must wait.
        let other = try SQLiteStateStore(path: h.store.path)
        await #expect(throws: StateError.self) { try await other.withExclusiveLock(timeout: 0.3) {} }
        let words = try await reconciler.control(.pause, service: "b", environment: "prod", by: Actor(user: "bob"))
        #expect(words.contains("paused"), "the control joined the pass's lock: \(words)")
        await #expect(throws: StateError.self) { try await other.withExclusiveLock(timeout: 0.3) {} }
        executor.released.withLock { $0 = true }
        _ = try await pass.value
        try await other.withExclusiveLock(timeout: 1) {}
        // With no pass, a control takes the lock itself, and lets it go.
        _ = try await reconciler.control(.resume, service: "b", environment: "prod", by: Actor(user: "bob"))
        try await other.withExclusiveLock(timeout: 1) {}
    }
}
