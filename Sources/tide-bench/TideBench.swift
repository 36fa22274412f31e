import ArgumentParser
import Foundation
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

    @Option(name: .long, help: "Scenarios to run (default: all). Known: dora.")
    var scenario: [String] = []

    @Option(name: .long, help: "Deployments recorded for the dora scenario.")
    var deployments: Int = 1_000_000

    @Option(name: .long, help: "Timed runs per scenario (after one warm-up).")
    var runs: Int = 5

    func validate() throws {
        let unknown = scenario.filter { !["dora"].contains($0) }
        if !unknown.isEmpty { throw ValidationError("unknown scenario(s): \(unknown.joined(separator: ", "))") }
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
    }

    func run() async throws {
        let wanted = scenario.isEmpty ? ["dora"] : scenario
        var results: [String: Result] = [:]
        if wanted.contains("dora") {
            results["dora"] = try await DoraScenario(deployments: deployments, runs: runs).run()
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            for (name, result) in results.sorted(by: { $0.key < $1.key }) {
                print(
                    "\(name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(String(format: "%.4f", result.seconds)) s  \(result.detail)"
                )
            }
        }
    }
}

/// One scenario's figures.
struct Result: Encodable {
    var seconds: Double
    var runs: [Double]
    var detail: String
}

/// Times `body` `runs` times after one warm-up; the median, in seconds.
func measure(runs: Int, _ body: () async throws -> Void) async rethrows -> (median: Double, all: [Double]) {
    try await body()
    var times: [Double] = []
    for _ in 0..<runs {
        let start = ContinuousClock.now
        try await body()
        let elapsed = ContinuousClock.now - start
        times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
    let sorted = times.sorted()
    return (sorted[sorted.count / 2], times)
}
