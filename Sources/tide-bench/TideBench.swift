import ArgumentParser
import Foundation
import TideEngine
import TideGit
import TideManifest
import TideMetrics
import TideState

/// `tide-bench`: Tide's speed, measured. Build it in release mode (`swift run -c release tide-bench`).
/// Each scenario reports the median of several timed runs after a warm-up.
@main
struct TideBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tide-bench", abstract: "Measure Tide on synthetic data, in release builds.")

    @Flag(name: .long, help: "Print one JSON object keyed by scenario.")
    var json = false

    static let scenarios = [
        "coldPlan", "incremental", "noopPoll", "deepHistory", "dora", "canaries", "slowExecutors", "stepJournal",
        "webhookLatency", "idleDaemon", "operatorLatency", "pushDuringPush",
    ]

    @Option(name: .long, help: "Scenarios to run (default: all). Known: \(scenarios.joined(separator: ", ")).")
    var scenario: [String] = []

    @Option(name: .long, help: "Services in the cold-plan repository (each in 3 environments).")
    var services: Int = 10_000

    @Option(name: .long, help: "Commits in the deep-history repository.")
    var commits: Int = 10_000

    @Option(name: .long, help: "Deployments recorded for the dora scenario.")
    var deployments: Int = 1_000_000

    @Option(name: .long, help: "Targets in canary rollouts for the canaries scenario.")
    var canaries: Int = 1_000

    @Option(name: .long, help: "Targets in the slowExecutors scenario (each action sleeps 1 s).")
    var slowTargets: Int = 100

    @Option(name: .long, help: "Concurrencies the slowExecutors scenario measures, comma-separated.")
    var slowConcurrency: String = "1,16,64"

    @Option(name: .long, help: "Pushes the webhookLatency scenario measures.")
    var pushes: Int = 50

    @Option(name: .long, help: "Services in the push the operatorLatency and pushDuringPush scenarios run.")
    var pushServices: Int = 50

    @Option(name: .long, help: "Requests the operatorLatency scenario measures.")
    var operatorRequests: Int = 20

    @Option(name: .long, help: "Seconds the idleDaemon scenario watches an idle tide run.")
    var idleSeconds: Double = 60

    @Option(name: .long, help: "Timed runs per scenario (after one warm-up).")
    var runs: Int = 5

    @Option(name: .long, help: .hidden)
    var child: String?

    @Option(name: .long, help: .hidden)
    var fixture: String?

    @Option(name: .long, help: "Only write the synthetic cold-plan repository at this path (for profiling).")
    var generate: String?

    @Flag(
        name: .long,
        help: """
            Check how figures grow on small sizes (1,000 and 4,000 services; 250 and 1,000 canaries) against their \
            bounds, in a few seconds; exits 1 when one is broken (scripts/test runs it).
            """)
    var check = false

    func validate() throws {
        let unknown = scenario.filter { !Self.scenarios.contains($0) }
        if !unknown.isEmpty { throw ValidationError("unknown scenario(s): \(unknown.joined(separator: ", "))") }
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
    }

    func run() async throws {
        if let generate {
            try SyntheticRepo.large(at: generate, services: services)
            return
        }
        if let child, let fixture {
            try await runChild(child, repo: fixture)
            return
        }
        if check {
            let bounds = try await GrowthCheck(runs: runs).run()
            if try !GrowthCheck.report(bounds, json: json) { throw ExitCode(1) }
            return
        }
        let wanted = scenario.isEmpty ? Self.scenarios : scenario
        var results: [String: Result] = [:]
        let scratch = try Scratch("run")
        defer { scratch.remove() }
        if wanted.contains("coldPlan") || wanted.contains("incremental") || wanted.contains("noopPoll") {
            let repo = scratch.file("large")
            let start = ContinuousClock.now
            try SyntheticRepo.large(at: repo, services: services)
            log("generated \(services) services in \(ContinuousClock.now - start)")
            let plans = PlanScenarios(services: services, runs: runs)
            if wanted.contains("coldPlan") {
                var result = try await plans.coldPlan(repo: repo, scratch: scratch)
                result.peakRSSMegabytes = try peakRSS(of: "coldPlan", repo: repo)
                results["coldPlan"] = result
                log("coldPlan done")
            }
            if wanted.contains("noopPoll") {
                results["noopPoll"] = try await plans.noopPoll(repo: repo, scratch: scratch)
                log("noopPoll done")
            }
            if wanted.contains("incremental") {
                var result = try await plans.incremental(repo: repo, scratch: scratch)
                result.peakRSSMegabytes = try peakRSS(of: "incremental", repo: repo)
                results["incremental"] = result
                log("incremental done")
            }
        }
        if wanted.contains("deepHistory") {
            results["deepHistory"] = try DeepHistoryScenario(commits: commits, span: 500, runs: runs).run(
                scratch: scratch)
            log("deepHistory done")
        }
        if wanted.contains("dora") {
            results["dora"] = try await DoraScenario(deployments: deployments, runs: runs).run()
            log("dora done")
        }
        if wanted.contains("canaries") {
            results["canaries"] = try await CanaryScenario(targets: canaries, runs: runs).run(scratch: scratch)
            log("canaries done")
        }
        if wanted.contains("slowExecutors") {
            let concurrencies = slowConcurrency.split(separator: ",").compactMap { Int($0) }
            results["slowExecutors"] = try await SlowExecutorsScenario(
                targets: slowTargets, concurrencies: concurrencies
            ).run(scratch: scratch)
            log("slowExecutors done")
        }
        if wanted.contains("stepJournal") {
            results["stepJournal"] = try await StepJournalScenario(targets: canaries, runs: runs).run(scratch: scratch)
            log("stepJournal done")
        }
        if wanted.contains("webhookLatency") {
            results["webhookLatency"] = try await WebhookLatencyScenario(pushes: pushes).run()
            log("webhookLatency done")
        }
        if wanted.contains("idleDaemon") {
            results["idleDaemon"] = try await IdleDaemonScenario(seconds: idleSeconds).run()
            log("idleDaemon done")
        }
        if wanted.contains("operatorLatency") {
            results["operatorLatency"] = try await OperatorLatencyScenario(
                services: pushServices, requests: operatorRequests
            ).run()
            log("operatorLatency done")
        }
        if wanted.contains("pushDuringPush") {
            results["pushDuringPush"] = try await PushDuringPushScenario(services: pushServices, pushes: 5).run()
            log("pushDuringPush done")
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            print("scenario         seconds   baseline  ratio   peak RSS  detail")
            for name in Self.scenarios {
                guard let result = results[name] else { continue }
                let baseline = result.baselineSeconds.map { String(format: "%.4f s", $0) } ?? "-"
                let ratio = result.ratio.map { String(format: "%.1f×", $0) } ?? "-"
                let rss = result.peakRSSMegabytes.map { String(format: "%.0f MB", $0) } ?? "-"
                print(
                    name.padding(toLength: 14, withPad: " ", startingAt: 0)
                        + String(format: "%9.4f s", result.seconds) + "  "
                        + baseline.padding(toLength: 10, withPad: " ", startingAt: 0)
                        + ratio.padding(toLength: 8, withPad: " ", startingAt: 0)
                        + rss.padding(toLength: 10, withPad: " ", startingAt: 0) + result.detail)
            }
        }
    }

    /// Runs one pass of a scenario in a fresh process of this executable and reads its peak resident memory.
    private func peakRSS(of scenario: String, repo: String) throws -> Double {
        let output = try SyntheticRepo.run(
            CommandLine.arguments[0].hasPrefix("/")
                ? CommandLine.arguments[0] : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0],
            ["--child", scenario, "--fixture", repo])
        guard let kilobytes = Double(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw BenchError("child printed \(output)")
        }
        return (kilobytes / 1024 * 10).rounded() / 10
    }

    /// The child side of `peakRSS`: one cold plan, or one incremental pass (seeded state, warm cache, one
    /// commit, one pass); prints its peak resident memory in kilobytes.
    private func runChild(_ scenario: String, repo: String) async throws {
        let scratch = try Scratch("child")
        defer { scratch.remove() }
        let plans = PlanScenarios(services: 0, runs: 1)
        switch scenario {
        case "coldPlan":
            let reconciler = Reconciler(
                ReconcilerDependencies(
                    repository: try Repository.open(at: repo), branch: "main", root: "",
                    store: try SQLiteStateStore(path: scratch.file("state.sqlite")), executors: NullExecutors()))
            _ = try await reconciler.plan()
        case "incremental":
            // Work on a copy: the parent's repository must stay as it is.
            let copy = scratch.file("repo")
            try SyntheticRepo.run("/usr/bin/git", ["clone", "-q", repo, copy])
            _ = try await plans.incremental(repo: copy, scratch: scratch)
        default:
            throw BenchError("no child scenario \(scenario)")
        }
        print(try Self.peakResidentKilobytes())
    }

    /// This process's peak resident memory (`VmHWM`), in kilobytes. Not `ru_maxrss`: Linux keeps that across
    /// exec, and a child spawned by a process that shares its memory until exec (posix_spawn's vfork) starts with
    /// its parent's peak — the bench's own, hundreds of megabytes, whatever the child uses.
    static func peakResidentKilobytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).dropLast(3))
        else { throw BenchError("no VmHWM in /proc/self/status") }
        return kilobytes
    }
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("tide-bench: \(message)\n".utf8))
}

/// One scenario's figures.
struct Result: Encodable {
    var seconds: Double
    var runs: [Double]
    var baselineSeconds: Double?
    var baselineRuns: [Double]?
    /// Baseline ÷ Tide.
    var ratio: Double?
    var peakRSSMegabytes: Double?
    var detail: String

    init(
        seconds: Double, runs: [Double], baselineSeconds: Double? = nil, baselineRuns: [Double]? = nil,
        ratio: Double? = nil, detail: String
    ) {
        self.seconds = seconds
        self.runs = runs
        self.baselineSeconds = baselineSeconds
        self.baselineRuns = baselineRuns
        self.ratio = ratio
        self.detail = detail
    }
}

/// Times `body` `runs` times after one warm-up, running `prepare` (untimed) before each; the median, in seconds.
func measure(
    runs: Int, prepare: () async throws -> Void = {}, _ body: () async throws -> Void
) async rethrows -> (median: Double, all: [Double]) {
    try await prepare()
    try await body()
    var times: [Double] = []
    for _ in 0..<runs {
        try await prepare()
        let start = ContinuousClock.now
        try await body()
        times.append(seconds(ContinuousClock.now - start))
    }
    let sorted = times.sorted()
    return (sorted[sorted.count / 2], times)
}

func measureSync(runs: Int, _ body: () throws -> Void) rethrows -> (median: Double, all: [Double]) {
    try body()
    var times: [Double] = []
    for _ in 0..<runs {
        let start = ContinuousClock.now
        try body()
        times.append(seconds(ContinuousClock.now - start))
    }
    let sorted = times.sorted()
    return (sorted[sorted.count / 2], times)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
