import Foundation
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState

/// An executor that does nothing, in process: the scenarios measure Tide, not deploy scripts.
struct NullExecutors: ExecutorFactory, Executor {
    func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor { self }
    func perform(_ request: ActionRequest) async -> ActionResult { ActionResult(outcome: .succeeded) }
}

/// A clock the canary scenario moves forward between passes.
final class BenchClock: TideClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    init(_ start: Date) { current = start }
    func now() -> Date { lock.withLock { current } }
    func advance(by seconds: Double) { lock.withLock { current = current.addingTimeInterval(seconds) } }
    func sleep(seconds: Double) async { advance(by: seconds) }
}

/// A scratch directory removed at the end of a scenario.
struct Scratch {
    let path: String

    init(_ name: String) throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent(
                "tide-bench-\(name)-\(UUID().uuidString.prefix(8))"
            ).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Live state as if everything in `desired` had been deployed and were healthy.
func seedHealthy(_ store: SQLiteStateStore, desired: DesiredState, at now: Date) async throws {
    let targets = desired.targets.map {
        LiveTarget(
            id: $0.id, executor: $0.executor, phase: .healthy, version: $0.version, configDigest: $0.configDigest,
            revision: desired.revision, updatedAt: now)
    }
    try await store.apply(
        StateWrite(
            targets: targets, repositoryStatus: RepositoryStatus(lastGoodRevision: desired.revision, lastGoodAt: now)))
}

/// Scenarios 1–3 and 7: cold plan (with the git-CLI baseline), incremental pass, no-op poll, peak RSS.
struct PlanScenarios {
    var services: Int
    var runs: Int

    /// `tide plan` from nothing: open the repository, read and parse every manifest, plan against an empty
    /// state file. Baseline: `git clone` (file://, so objects travel as a pack, as from a server) with its
    /// checkout, then reading and parsing the checked-out files with the same decoder and validation.
    func coldPlan(repo: String, scratch: Scratch) async throws -> Result {
        let (tide, targets) = try await tideColdPlan(repo: repo, scratch: scratch)
        var baselineTargets = 0
        var clone = 0
        let baseline = try await measure(runs: runs) {
            clone += 1
            let checkout = scratch.file("clone-\(clone)")
            try SyntheticRepo.run("/usr/bin/git", ["clone", "-q", "file://\(repo)", checkout])
            let desired = try ManifestLoader().load(from: DirectorySource(directory: checkout))
            baselineTargets = desired.targets.count
            try? FileManager.default.removeItem(atPath: checkout)
        }
        guard targets == baselineTargets else {
            throw BenchError("tide planned \(targets) targets, the baseline read \(baselineTargets)")
        }
        return Result(
            seconds: tide.median, runs: tide.all, baselineSeconds: baseline.median, baselineRuns: baseline.all,
            ratio: baseline.median / tide.median,
            detail: "\(services) services, \(targets) targets planned; baseline git clone + checkout + parse")
    }

    /// Tide's side of `coldPlan`: the timing, and how many targets were planned.
    func tideColdPlan(repo: String, scratch: Scratch) async throws -> (timing: (median: Double, all: [Double]), Int) {
        let store = try SQLiteStateStore(path: scratch.file("cold-\(UUID().uuidString.prefix(8)).sqlite"))
        var targets = 0
        let tide = try await measure(runs: runs) { targets = try await Self.coldPlanOnce(repo: repo, store: store) }
        return (tide, targets)
    }

    /// One `tide plan` from nothing on `repo`: how many targets it planned.
    static func coldPlanOnce(repo: String, store: SQLiteStateStore) async throws -> Int {
        let reconciler = Reconciler(
            ReconcilerDependencies(
                repository: try Repository.open(at: repo), branch: "main", root: "", store: store,
                executors: NullExecutors()))
        let (resolution, plan) = try await reconciler.plan()
        if let problem = resolution.rejected.first { throw BenchError("the synthetic repo is invalid: \(problem)") }
        return plan?.actions.count ?? 0
    }

    /// A running reconciler (warm parse cache); one commit changes one service's version; the next pass.
    func incremental(repo: String, scratch: Scratch) async throws -> Result {
        let repository = try Repository.open(at: repo)
        let store = try SQLiteStateStore(path: scratch.file("incremental.sqlite"))
        let clock = BenchClock(Date())
        let reconciler = Reconciler(
            ReconcilerDependencies(
                repository: repository, branch: "main", root: "", store: store, executors: NullExecutors(), clock: clock
            ))
        try await seedHealthy(store, desired: try reconciler.resolve(record: false).desired!, at: clock.now())
        _ = try await reconciler.reconcile()  // warms the parse cache: nothing to do
        var bump = 0
        var deployed = 0
        let timing = try await measure(
            runs: runs,
            prepare: {
                // A new commit per run, off the clock: service `bump` gets a new dev version.
                bump += 1
                let head = try repository.resolveCommit(branch: "main")
                let text = SyntheticRepo.service(bump, devVersion: "2.0.\(bump)")
                _ = try repository.commitFile(
                    path: SyntheticRepo.servicePath(bump), contents: Array(text.utf8), branch: "main", parent: head,
                    message: "Bump \(SyntheticRepo.serviceName(bump))")
            },
            {
                let report = try await reconciler.reconcile()
                deployed = report.outcomes.filter { $0.result != .unchanged }.count
            })
        return Result(
            seconds: timing.median, runs: timing.all,
            detail: "\(services * 3) live targets; one service changed; \(deployed) target(s) acted on per pass")
    }

    /// Nothing moved: the branch head is the applied revision and every target is settled.
    func noopPoll(repo: String, scratch: Scratch) async throws -> Result {
        let repository = try Repository.open(at: repo)
        let store = try SQLiteStateStore(path: scratch.file("noop.sqlite"))
        let reconciler = Reconciler(
            ReconcilerDependencies(
                repository: repository, branch: "main", root: "", store: store, executors: NullExecutors()))
        try await seedHealthy(store, desired: try reconciler.resolve(record: false).desired!, at: Date())
        _ = try await reconciler.reconcile()
        var changed = 0
        let timing = try await measure(runs: max(runs, 20)) {
            let report = try await reconciler.reconcile()
            changed = report.outcomes.filter { $0.result != .unchanged }.count
        }
        guard changed == 0 else { throw BenchError("a no-op pass changed \(changed) targets") }
        return Result(seconds: timing.median, runs: timing.all, detail: "\(services * 3) live targets, head unchanged")
    }
}

/// Reads the manifests of a checked-out directory, as a tool working from a git checkout does.
struct DirectorySource: ManifestSource {
    let directory: String
    private let paths: [ObjectID: String]
    let listing: [TreeFile]

    init(directory: String) throws {
        self.directory = directory
        var paths: [ObjectID: String] = [:]
        var listing: [TreeFile] = []
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let path = enumerator?.nextObject() as? String {
            if path == ".git" {
                enumerator?.skipDescendants()
                continue
            }
            let id = ObjectID.blobHash(of: Array(path.utf8))
            paths[id] = path
            listing.append(TreeFile(path: path, blob: id, isExecutable: false))
        }
        self.paths = paths
        self.listing = listing
    }

    var revision: ObjectID? { nil }
    var root: String { "" }
    func files() throws -> [TreeFile] { listing }

    func contents(of blob: ObjectID) throws -> [UInt8] {
        guard let path = paths[blob] else { throw BenchError("no file for \(blob)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(path)))
        return Array(data)
    }
}
