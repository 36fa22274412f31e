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
        h.executor.fail(when: { $0.service == "a" || $0.service == "b" }, with: .exited(1))
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

        // After the cool-down: one trial (c) goes through; it succeeds, the breaker closes, d follows.
        h.executor.reset()
        h.clock.advance(by: 300)
        _ = try await serial.reconcile(lockTimeout: 1)
        #expect(h.executor.requests.filter { $0.action == .deploy }.map(\.service) == ["c", "d"])
        #expect(try #require(await h.store.executorHealth().first).state(at: h.clock.now()) == .closed)
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
        h.executor.fail(when: { _ in true }, with: .exited(1))
        _ = try await serial.reconcile(lockTimeout: 1)
        h.clock.advance(by: 301)
        h.executor.reset()
        _ = try await serial.reconcile(lockTimeout: 1)
        #expect(h.executor.requests.map(\.service) == ["c"], "one trial, which fails")
        let health = try #require(await h.store.executorHealth().first)
        #expect(health.openUntil == h.clock.now().addingTimeInterval(300))
        #expect(health.consecutiveFailures == 3)
    }
}
