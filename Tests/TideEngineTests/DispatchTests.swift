import Foundation
import Synchronization
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

/// How a pass dispatches targets: independent ones at once, dependent ones in order, errors kept to their target.
@Suite("TideEngine: concurrent, isolated targets")
struct DispatchTests {
    /// Deploys wait at a barrier until `width` of them are in flight (or give up after 10 s and fail): a pass
    /// that runs targets one at a time can never get past it.
    final class Barrier: Executor, ExecutorFactory, Sendable {
        let width: Int
        let inFlight = Mutex(0)
        let widest = Mutex(0)
        let order = Mutex<[String]>([])

        init(width: Int) { self.width = width }

        func perform(_ request: ActionRequest) async -> ActionResult {
            order.withLock { $0.append("\(request.action.rawValue) \(request.service)") }
            guard request.action == .deploy else { return ActionResult(outcome: .succeeded) }
            let now = inFlight.withLock { count -> Int in
                count += 1
                return count
            }
            widest.withLock { $0 = max($0, now) }
            defer { inFlight.withLock { $0 -= 1 } }
            let deadline = ContinuousClock.now + .seconds(10)
            while widest.withLock({ $0 }) < width {
                if ContinuousClock.now > deadline { return ActionResult(outcome: .exited(1), standardError: "alone") }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return ActionResult(outcome: .succeeded)
        }

        func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor {
            guard manifest.name != "broken" else { throw ExecutorSetupError(name: manifest.name) }
            return self
        }
    }

    struct ExecutorSetupError: Error, CustomStringConvertible {
        var name: String
        var description: String { "executor \(name) cannot be set up here" }
    }

    static func files(services: [(String, [String], String)]) -> [String: String] {
        var files = [
            "base.yaml": """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: local}
            spec: {type: command, command: ["/bin/true"]}
            ---
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: broken}
            spec: {type: command, command: ["/bin/true"]}
            ---
            apiVersion: tide/v1
            kind: Environment
            metadata: {name: prod}
            spec: {}

            """
        ]
        for (name, dependsOn, executor) in services {
            files["\(name).yaml"] = serviceYAML(name, version: "1.0", dependsOn: dependsOn).replacingOccurrences(
                of: "executor: local", with: "executor: \(executor)")
        }
        return files
    }

    @Test("independent targets deploy at once; a dependent one only after what it depends on")
    func concurrentThenOrdered() async throws {
        let barrier = Barrier(width: 3)
        let h = try Harness(
            store: .inMemory,
            files: Self.files(services: [
                ("a", [], "local"), ("b", [], "local"), ("c", [], "local"), ("d", ["a", "b", "c"], "local"),
            ]),
            executors: barrier)
        let report = try await h.reconciler.reconcile(lockTimeout: 1)
        #expect(report.outcomes.map(\.result) == [.deployed, .deployed, .deployed, .deployed], "\(report.outcomes)")
        #expect(barrier.widest.withLock { $0 } >= 3, "a, b and c were in flight together")
        let order = barrier.order.withLock { $0 }
        let dFirst = try #require(order.firstIndex(of: "deploy d"))
        for service in ["a", "b", "c"] {
            #expect(try #require(order.firstIndex(of: "health \(service)")) < dFirst, "\(order)")
        }
        // Outcomes are reported in plan order, whatever order they finished in.
        #expect(report.outcomes.map(\.target.service) == ["a", "b", "c", "d"])
    }

    @Test("with --concurrency 1 targets run one at a time")
    func serial() async throws {
        let barrier = Barrier(width: 1)
        let h = try Harness(
            store: .inMemory, files: Self.files(services: [("a", [], "local"), ("b", [], "local")]), executors: barrier)
        _ = try await h.makeReconciler(concurrency: 1).reconcile(lockTimeout: 1)
        #expect(barrier.widest.withLock { $0 } == 1)
        #expect(barrier.order.withLock { $0 } == ["deploy a", "health a", "deploy b", "health b"])
    }

    @Test("an error in one target is recorded on it and the pass goes on with the others")
    func isolation() async throws {
        let h = try Harness(
            store: .inMemory,
            files: Self.files(services: [("a", [], "broken"), ("b", [], "local"), ("c", ["a"], "local")]),
            executors: Barrier(width: 1))
        let report = try await h.reconciler.reconcile(lockTimeout: 1)
        let results = Dictionary(uniqueKeysWithValues: report.outcomes.map { ($0.target.service, $0) })
        #expect(results["a"]?.result == .failed)
        #expect(results["a"]?.message?.contains("executor broken cannot be set up here") == true)
        #expect(results["b"]?.result == .deployed, "the pass went on")
        #expect(results["c"]?.result == .blocked, "what depends on the failed one waits for it")
        let errors = await h.store.events(EventQuery(kinds: [.reconcileError]))
        #expect(errors.map { $0.target?.service } == ["a"])
        let a = try #require(await h.live("a"))
        #expect(a.waiting?.contains("executor broken cannot be set up here") == true, "shown on the target")
        #expect(a.version == nil)
    }
}
