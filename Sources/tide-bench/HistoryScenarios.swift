import Foundation
import TideEngine
import TideGit
import TideManifest
import TideState

/// Scenario 4: lead time of one deployment that spans 500 commits of a 10,000-commit history — the commits in
/// between that touched the service's manifest, as the deployment ledger computes them.
struct DeepHistoryScenario {
    var commits: Int
    var span: Int
    var runs: Int

    func run(scratch: Scratch) throws -> Result {
        let repo = scratch.file("history")
        let services = 100
        try SyntheticRepo.history(at: repo, services: services, commits: commits)
        let repository = try Repository.open(at: repo)
        let head = try repository.resolveCommit(branch: "main")
        let all = try repository.commits(from: head, limit: span + 1)
        let base = all[span].id
        let path = SyntheticRepo.servicePath(7)
        var found = 0
        let timing = try measureSync(runs: runs) {
            found = try repository.commits(from: head, excluding: base, touching: [path]).count
        }
        guard found == span / services else {
            throw BenchError("expected \(span / services) commits touching \(path), found \(found)")
        }
        return Result(
            seconds: timing.median, runs: timing.all,
            detail: "\(commits + 1) commits; \(span) walked, \(found) touched the service's file")
    }
}

/// Scenario 6: 1,000 targets in canary rollouts, each advanced one step (a pause ends, the next weight is set)
/// by one reconcile pass, with an in-process executor and a real SQLite state file.
struct CanaryScenario {
    var targets: Int
    var runs: Int

    static func manifests(targets: Int, version: String, pairs: Int) -> [(String, String)] {
        var steps = ""
        for k in 1...pairs { steps += "      - setWeight: \(k * 90 / pairs)\n      - pause: 1m\n" }
        var files = [SyntheticRepo.singleProdPlatform]
        for n in 0..<targets {
            files.append(
                (
                    "services/\(SyntheticRepo.serviceName(n)).yaml",
                    """
                    apiVersion: tide/v1
                    kind: Service
                    metadata: {name: \(SyntheticRepo.serviceName(n))}
                    spec:
                      executor: local
                      version: "\(version)"
                      config: {replicas: 3}
                      environments: {prod: {}}
                      strategy:
                        type: canary
                        steps:
                    \(steps)
                    """
                ))
        }
        return files
    }

    func run(scratch: Scratch) async throws -> Result {
        let (reconciler, clock) = try await started(scratch: scratch, steps: runs + 3)
        var calls = 0
        let timing = try await measure(
            runs: runs, prepare: { clock.advance(by: 61) },
            {
                let report = try await reconciler.reconcile()
                calls = report.outcomes.reduce(0) { $0 + $1.executorCalls }
            })
        guard calls == targets else { throw BenchError("a pass made \(calls) executor calls, not \(targets)") }
        return Result(
            seconds: timing.median, runs: timing.all,
            detail: "\(targets) canaries, one pause ended and one set-weight each per pass (\(calls) calls)")
    }

    /// The canaries started (each at its first pause), with room for `steps` more passes that advance them.
    func started(scratch: Scratch, steps: Int) async throws -> (Reconciler, BenchClock) {
        let repo = scratch.file("canaries")
        let pairs = steps
        try SyntheticRepo.write(
            at: repo,
            commits: [
                ("v1", Self.manifests(targets: targets, version: "1.0.0", pairs: pairs)),
                ("v2", Self.manifests(targets: targets, version: "2.0.0", pairs: pairs)),
            ])
        let repository = try Repository.open(at: repo)
        let store = try SQLiteStateStore(path: scratch.file("canaries.sqlite"))
        let clock = BenchClock(Date(timeIntervalSince1970: 1_800_000_000))
        let reconciler = Reconciler(
            ReconcilerDependencies(
                repository: repository, branch: "main", root: "", store: store, executors: NullExecutors(), clock: clock
            ))
        // v1 runs everywhere; v2 is desired: the first pass starts every canary and stops at its first pause.
        let first = try repository.commits(from: try repository.resolveCommit(branch: "main"))[1].id
        let loader = ManifestLoader()
        let v1 = try loader.load(from: GitCommitSource(repository: repository, commit: first, root: ""))
        try await seedHealthy(store, desired: v1, at: clock.now())
        let started = try await reconciler.reconcile()
        let progressing = started.outcomes.filter { $0.result == .progressing }.count
        guard progressing == targets else { throw BenchError("\(progressing) canaries started, not \(targets)") }
        return (reconciler, clock)
    }
}
