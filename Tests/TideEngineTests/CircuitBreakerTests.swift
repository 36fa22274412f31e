import Foundation
import Testing
import TideEngine
import TideExecutors
import TideManifest
import TideState
import TideTestSupport

/// An executor that keeps failing stops being called for a while, across its targets, and is tried again one
/// action at a time.
@Suite("TideEngine: an executor's circuit breaker")
struct CircuitBreakerTests {
    static let executors = """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: local}
        spec:
          type: command
          command: ["/bin/true"]
          retry: {limit: 0}
          circuitBreaker: {failureThreshold: 2, coolDown: 5m}
        ---
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: other}
        spec: {type: command, command: ["/bin/true"]}
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: prod}
        spec: {production: true}

        """

    static func service(_ name: String, executor: String = "local") -> String {
        serviceYAML(name, version: "1.0.0").replacingOccurrences(of: "executor: local", with: "executor: \(executor)")
    }

    @Test(
        "two failures in a row open it: the third target waits, another executor's target runs; after the cool-down one trial closes it"
    )
    func opensAndCloses() async throws {
        let h = try EngineHarness(
            store: .inMemory,
            files: [
                "tide/base.yaml": Self.executors, "services/a.yaml": Self.service("a"),
                "services/b.yaml": Self.service("b"), "services/c.yaml": Self.service("c"),
                "services/d.yaml": Self.service("d"), "services/z.yaml": Self.service("z", executor: "other"),
            ])
        // One target at a time, in name order, so which targets meet the open breaker is known.
        let serial = try h.makeReconciler(concurrency: 1)
        // Exit 75: the executor says it (or what it talks to) is unavailable — what a breaker counts.
        h.executor.fail(when: { $0.service == "a" || $0.service == "b" }, with: .exited(75))
        let report = try await serial.reconcile(lockTimeout: 1)
        let deployed = h.executor.requests.filter { $0.action == .deploy }.map(\.service)
        #expect(deployed == ["a", "b", "z"], "c and d are not attempted while the breaker is open")
        let c = try #require(report.outcomes.first { $0.target.service == "c" })
        #expect(c.result == .progressing)
        #expect(c.message?.contains("executor local's circuit breaker is open (2 failures in a row") == true)
        let recorded = try #require(await h.store.executorHealth().first { $0.executor == "local" })
        #expect(recorded.state(at: h.clock.now()) == .open)
        #expect(await h.store.executorHealth().contains { $0.executor == "other" } == false)

        // Still open a minute later: nothing is called.
        h.executor.reset()
        h.clock.advance(by: 60)
        _ = try await serial.reconcile(lockTimeout: 1)
        #expect(h.executor.requests.filter { $0.action == .deploy }.isEmpty)

        // After the cool-down, with the executor working again: one trial (a, whose retry is due first) goes
        // through; it succeeds, the breaker closes, and the others follow.
        h.executor.reset()
        h.executor.clearFailures()
        h.clock.advance(by: 300)
        _ = try await serial.reconcile(lockTimeout: 1)
        #expect(h.executor.requests.filter { $0.action == .deploy }.map(\.service) == ["a", "b", "c", "d"])
        #expect(try #require(await h.store.executorHealth().first).state(at: h.clock.now()) == .closed)
    }

    @Test("candidates' own failures do not open it: five versions that cannot deploy leave a healthy sixth alone")
    func candidatesOwnFailures() async throws {
        var files = ["tide/base.yaml": Self.executors]
        for name in ["a", "b", "c", "d", "e", "f"] { files["services/\(name).yaml"] = Self.service(name) }
        let h = try EngineHarness(store: .inMemory, files: files)
        let serial = try h.makeReconciler(concurrency: 1)
        h.executor.fail(when: { $0.service != "f" }, with: .exited(1))
        let report = try await serial.reconcile(lockTimeout: 1)
        #expect(report.outcomes.first { $0.target.service == "f" }?.result == .deployed, "\(report.outcomes)")
        #expect(report.outcomes.filter { $0.result == .failed }.count == 5)
        let health = await h.store.executorHealth().first { $0.executor == "local" }
        #expect(health == nil || health?.openUntil == nil, "\(String(describing: health))")
    }

    @Test("a failed trial opens it again for another cool-down")
    func failedTrial() async throws {
        let h = try EngineHarness(
            store: .inMemory,
            files: [
                "tide/base.yaml": Self.executors, "services/a.yaml": Self.service("a"),
                "services/b.yaml": Self.service("b"), "services/c.yaml": Self.service("c"),
            ])
        let serial = try h.makeReconciler(concurrency: 1)
        h.executor.fail(when: { _ in true }, with: .exited(75))
        _ = try await serial.reconcile(lockTimeout: 1)
        h.clock.advance(by: 301)
        h.executor.reset()
        _ = try await serial.reconcile(lockTimeout: 1)
        #expect(h.executor.requests.map(\.service) == ["a"], "one trial, which fails")
        let health = try #require(await h.store.executorHealth().first)
        #expect(health.openUntil == h.clock.now().addingTimeInterval(300))
        #expect(health.consecutiveFailures == 3)
    }
}
