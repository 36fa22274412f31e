import Foundation
import TideGit
import TideManifest
import TideMetrics
import TideState

/// The DORA summary over a ledger of N deployments (default one million) in a 30-day window, read from a real
/// SQLite state file: 100 services × 3 environments (two of them production), 5 % failed and recovered, one
/// change per deployment.
struct DoraScenario {
    var deployments: Int
    var runs: Int

    func run() async throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tide-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStateStore(path: directory.appendingPathComponent("state.sqlite").path)

        let end = Date(timeIntervalSince1970: 1_800_000_000)
        let start = end.addingTimeInterval(-30 * 86_400)
        let step = 30 * 86_400 / Double(max(deployments, 1))
        let environments = ["prod-eu", "prod-us", "staging"]
        let loadStart = ContinuousClock.now
        var batch: [DeploymentRecord] = []
        batch.reserveCapacity(50_000)
        for n in 0..<deployments {
            let finished = start.addingTimeInterval(Double(n) * step)
            let failed = n % 20 == 0
            let environment = environments[n % 3]
            batch.append(
                DeploymentRecord(
                    id: "d\(n)", target: TargetID(service: "svc-\(n % 100)", environment: environment),
                    production: environment.hasPrefix("prod"), revision: ObjectID.blobHash(of: Array("r\(n)".utf8)),
                    version: "1.\(n % 1000).0", previousVersion: nil,
                    classification: n % 50 == 0 ? .rollback : .feature,
                    startedAt: finished.addingTimeInterval(-120), finishedAt: finished, succeeded: n % 40 != 0,
                    failed: failed, failureReason: failed ? "bench" : nil,
                    recoveredAt: failed ? finished.addingTimeInterval(Double(n % 7200)) : nil,
                    changes: [
                        DeploymentRecord.Change(
                            commit: ObjectID.blobHash(of: Array("c\(n)".utf8)),
                            committedAt: finished.addingTimeInterval(-Double(600 + n % 86_400)))
                    ]))
            if batch.count == 50_000 {
                try await store.apply(StateWrite(deployments: batch))
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try await store.apply(StateWrite(deployments: batch)) }
        let load = ContinuousClock.now - loadStart

        let calculator = DoraCalculator(store: store)
        var report: DoraReport?
        let timing = try await measure(runs: runs) {
            report = try await calculator.report(DeploymentFilter(from: start, to: end))
        }
        let summary =
            report.map {
                "deployments=\($0.deployments) perDay=\(Int($0.deploymentFrequency.perDay ?? 0)) "
                    + "leadMedian=\(Int($0.leadTime.medianSeconds ?? 0))s cfr=\($0.changeFailureRate.value ?? 0)"
            } ?? ""
        return Result(
            seconds: timing.median, runs: timing.all,
            detail: "\(deployments) deployments recorded (load \(load)); \(summary)")
    }
}
