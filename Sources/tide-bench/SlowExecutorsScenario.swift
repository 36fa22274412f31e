import Foundation
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState

/// `slowExecutors`: one pass that deploys `targets` independent services (recreate: deploy, then health) through
/// an executor whose every action takes one second, at each concurrency — what a pass costs when executors are
/// slow, and how much running targets concurrently buys. Each concurrency gets a fresh state (one pass each: at
/// concurrency 1 a pass takes `2 × targets` seconds).
struct SlowExecutorsScenario {
    var targets: Int
    var concurrencies: [Int]
    var actionSeconds: Double = 1

    struct Sleepy: ExecutorFactory, Executor {
        var seconds: Double
        func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor { self }
        func perform(_ request: ActionRequest) async -> ActionResult {
            try? await Task.sleep(for: .seconds(seconds))
            return ActionResult(outcome: .succeeded, duration: seconds)
        }
    }

    func run(scratch: Scratch) async throws -> Result {
        let repo = scratch.file("slow")
        var files = [SyntheticRepo.singleProdPlatform]
        for n in 0..<targets {
            let name = SyntheticRepo.serviceName(n)
            files.append(
                (
                    "services/\(name).yaml",
                    """
                    apiVersion: tide/v1
                    kind: Service
                    metadata: {name: \(name)}
                    spec: {executor: local, version: "1.0.0", environments: {prod: {}}}

                    """
                ))
        }
        try SyntheticRepo.write(at: repo, commits: [("v1", files)])
        let repository = try Repository.open(at: repo)
        var figures: [(concurrency: Int, seconds: Double)] = []
        for concurrency in concurrencies {
            let store = try SQLiteStateStore(path: scratch.file("slow-\(concurrency).sqlite"))
            let reconciler = Reconciler(
                ReconcilerDependencies(
                    repository: repository, branch: "main", root: "", store: store,
                    executors: Sleepy(seconds: actionSeconds),
                    clock: BenchClock(Date(timeIntervalSince1970: 1_800_000_000)),
                    concurrency: concurrency))
            let start = ContinuousClock.now
            let report = try await reconciler.reconcile()
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let deployed = report.outcomes.filter { $0.result == .deployed }.count
            guard deployed == targets else { throw BenchError("\(deployed) of \(targets) deployed") }
            figures.append((concurrency, seconds))
            log("slowExecutors: concurrency \(concurrency): \(String(format: "%.2f", seconds)) s")
        }
        return Result(
            seconds: figures.last?.seconds ?? 0, runs: figures.map(\.seconds),
            detail: "\(targets) targets × 2 actions of \(actionSeconds) s; one pass at concurrency "
                + figures.map { "\($0.concurrency): \(String(format: "%.2f", $0.seconds)) s" }.joined(separator: ", "))
    }
}
