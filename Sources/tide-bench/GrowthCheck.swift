import Foundation
import TideEngine
import TideGit
import TideState

/// `tide-bench --check`: how figures grow with the size of the repository, measured in one run on small sizes, each
/// against a bound — so a path that turns quadratic fails `scripts/test` in seconds, while a slow or noisy machine
/// (which slows every size alike) does not.
///
/// Each figure is the fastest of a few timed runs (the least disturbed by the machine); a ratio compares two sizes
/// measured one after the other in this process.
struct GrowthCheck {
    /// Services in the small and the large repository (each in 3 environments).
    var small = 1_000
    var large = 4_000
    var runs = 3

    struct Bound: Encodable {
        var figure: String
        var measured: Double
        var limit: Double
        var detail: String
        var holds: Bool { measured <= limit }
    }

    /// Linear growth over 4× the services is 4× (measured: 3.6–4.6 on the 2-core CI machine); a quadratic path gives
    /// 16×, and a quadratic part of a fifth of the time at the small size already gives 6.4×.
    static let growthLimit = 6.0
    /// An incremental pass (one service changed) against a pass with nothing to do, at the large size (measured:
    /// 100–230).
    static let incrementalOverNoop = 500.0

    func run() async throws -> [Bound] {
        var repos: [Int: String] = [:]
        var scratches: [Int: Scratch] = [:]
        defer { for scratch in scratches.values { scratch.remove() } }
        for size in [small, large] {
            let scratch = try Scratch("check-\(size)")
            scratches[size] = scratch
            repos[size] = scratch.file("repo")
            try SyntheticRepo.large(at: repos[size]!, services: size)
        }
        // Each figure's two sizes are timed in turn, run after run: a machine that slows down for a while slows
        // both sides of the ratio.
        let sizes = [small, large]
        let cold = try await Self.interleaved(
            sizes, runs: runs,
            probes: try await sizes.asyncMap { try await Self.coldPlanProbe(repo: repos[$0]!, scratch: scratches[$0]!) }
        )
        let noop = try await Self.interleaved(
            sizes, runs: max(runs, 10),
            probes: try await sizes.asyncMap {
                try await Self.passProbe(repo: repos[$0]!, scratch: scratches[$0]!, bump: false)
            })
        let incremental = try await Self.interleaved(
            sizes, runs: runs,
            probes: try await sizes.asyncMap {
                try await Self.passProbe(repo: repos[$0]!, scratch: scratches[$0]!, bump: true)
            })
        log("check: \(small) and \(large) services measured")
        let counts = [small / 4, large / 4]
        let canaries = try await Self.interleaved(
            counts, runs: runs,
            probes: try await counts.asyncMap { count in
                let (reconciler, clock) = try await CanaryScenario(targets: count, runs: runs).started(
                    scratch: scratches[count * 4]!, steps: runs + 3)
                return Probe(prepare: { clock.advance(by: 61) }, body: { _ = try await reconciler.reconcile() })
            })
        func growth(_ figure: String, _ times: [Int: Double], _ smallSize: Int, _ largeSize: Int, _ unit: String)
            -> Bound
        {
            let (a, b) = (times[smallSize]!, times[largeSize]!)
            return Bound(
                figure: "\(figure) growth", measured: b / a, limit: Self.growthLimit,
                detail: String(format: "%d %@ %.4f s, %d %@ %.4f s", smallSize, unit, a, largeSize, unit, b))
        }
        return [
            growth("coldPlan", cold, small, large, "services"),
            growth("incremental", incremental, small, large, "services"),
            growth("noopPoll", noop, small, large, "services"),
            growth("canaries", canaries, small / 4, large / 4, "canaries"),
            Bound(
                figure: "incremental ÷ noopPoll", measured: incremental[large]! / noop[large]!,
                limit: Self.incrementalOverNoop,
                detail: String(
                    format: "at %d services: %.4f s ÷ %.4f s", large, incremental[large]!, noop[large]!)),
        ]
    }

    /// Something timed again and again: `prepare` off the clock, then `body` on it.
    struct Probe {
        var prepare: () async throws -> Void = {}
        var body: () async throws -> Void
    }

    /// Each probe once untimed, then `runs` rounds timing each in turn; the fastest time of each, by size.
    static func interleaved(_ sizes: [Int], runs: Int, probes: [Probe]) async throws -> [Int: Double] {
        var best: [Int: Double] = [:]
        for round in 0...runs {
            for (size, probe) in zip(sizes, probes) {
                try await probe.prepare()
                let start = ContinuousClock.now
                try await probe.body()
                let time = seconds(ContinuousClock.now - start)
                if round > 0 { best[size] = min(best[size] ?? .infinity, time) }
            }
        }
        return best
    }

    /// `tide plan` from nothing (the coldPlan scenario).
    static func coldPlanProbe(repo: String, scratch: Scratch) async throws -> Probe {
        let store = try SQLiteStateStore(path: scratch.file("cold.sqlite"))
        return Probe { _ = try await PlanScenarios.coldPlanOnce(repo: repo, store: store) }
    }

    /// A pass of a running reconciler over settled targets: with `bump`, after a commit that changes one service
    /// (the incremental scenario); without, with nothing changed (noopPoll).
    static func passProbe(repo: String, scratch: Scratch, bump: Bool) async throws -> Probe {
        let repository = try Repository.open(at: repo)
        let store = try SQLiteStateStore(path: scratch.file(bump ? "incremental.sqlite" : "noop.sqlite"))
        let clock = BenchClock(Date())
        let reconciler = Reconciler(
            ReconcilerDependencies(
                repository: repository, branch: "main", root: "", store: store, executors: NullExecutors(), clock: clock
            ))
        try await seedHealthy(store, desired: try reconciler.resolve(record: false).desired!, at: clock.now())
        _ = try await reconciler.reconcile()
        let counter = Counter()
        return Probe(
            prepare: {
                guard bump else { return }
                let n = counter.next()
                let head = try repository.resolveCommit(branch: "main")
                _ = try repository.commitFile(
                    path: SyntheticRepo.servicePath(n),
                    contents: Array(SyntheticRepo.service(n, devVersion: "2.0.\(n)").utf8), branch: "main",
                    parent: head, message: "Bump \(SyntheticRepo.serviceName(n))")
            },
            body: {
                let report = try await reconciler.reconcile()
                let acted = report.outcomes.filter { $0.result != .unchanged }.count
                if !bump, acted != 0 { throw BenchError("a no-op pass changed \(acted) targets") }
            })
    }

    final class Counter: @unchecked Sendable {
        private var value = 0
        func next() -> Int {
            value += 1
            return value
        }
    }

    /// Prints the bounds; false when one is broken.
    static func report(_ bounds: [Bound], json: Bool) throws -> Bool {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(bounds), as: UTF8.self))
        } else {
            for bound in bounds {
                print(
                    (bound.holds ? "ok    " : "BROKEN") + " "
                        + bound.figure.padding(toLength: 24, withPad: " ", startingAt: 0)
                        + String(format: "%8.2f (bound %.0f)  ", bound.measured, bound.limit) + bound.detail)
            }
        }
        let broken = bounds.filter { !$0.holds }
        for bound in broken {
            log(
                "tide-bench --check: \(bound.figure) is \(String(format: "%.2f", bound.measured)), over its bound "
                    + "\(String(format: "%.0f", bound.limit)) (\(bound.detail)): something grows faster than the "
                    + "repository")
        }
        return broken.isEmpty
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
