import Foundation
import Testing
import TideEngine
import TideGit
import TideManifest
import TideMetrics
import TideState
import TideTestSupport

let hour = 3600.0
let day = 86_400.0
/// 2027-01-15T08:00:00Z.
let t0 = Date(timeIntervalSince1970: 1_800_000_000)

/// Drives real reconcile passes over a git repo whose commits carry chosen dates, with a test clock, and a real
/// SQLite state file, so every DORA figure below is known in advance.
typealias DoraHarness = EngineHarness<SQLiteStateStore>

extension EngineHarness<SQLiteStateStore> {
    /// base.yaml is written but not committed: the first deployment's commit carries it, at its own date.
    init(production: Bool = true) throws {
        try self.init(
            store: .sqliteFile,
            files: [
                "base.yaml": commandExecutorManifest("x") + """
                    ---
                    apiVersion: tide/v1
                    kind: Environment
                    metadata: {name: prod}
                    spec: {production: \(production)}

                    """
            ],
            commit: nil, clock: TestClock(t0))
    }

    static func service(_ version: String, note: String = "", hotfix: Bool = false) -> String {
        """
        apiVersion: tide/v1
        kind: Service
        metadata: {name: api}
        spec:
          executor: x
          version: "\(version)"
          hotfix: \(hotfix)
          environments: {prod: {}}
        # \(note)

        """
    }

    /// Commits `version` at `committed` and reconciles at `deployed`.
    @discardableResult
    func deploy(_ version: String, committed: Date, deployed: Date, hotfix: Bool = false) async throws -> ObjectID {
        let id = try await fixture.commit(
            "api \(version)", files: ["api.yaml": Self.service(version, hotfix: hotfix)], date: committed)
        try await pass(at: deployed)
        return id
    }

    @discardableResult
    func revert(_ commit: ObjectID, committed: Date, deployed: Date) async throws -> ObjectID {
        let id = try await fixture.revert(commit, date: committed)
        try await pass(at: deployed)
        return id
    }

    func report(from: Date = t0 - 30 * day, to: Date = t0 + 30 * day, environment: String? = nil) async throws
        -> DoraReport
    {
        try await DoraCalculator(store: store).report(DeploymentFilter(from: from, to: to, environment: environment))
    }
}

func approximately(_ a: Double?, _ b: Double) -> Bool {
    guard let a else { return false }
    return abs(a - b) < 0.001
}

@Suite("DORA: each rule on a hand-built history with a known answer")
struct DoraHistoryTests {
    @Test("a deployment with ten commits: every commit's lead time counts")
    func tenCommits() async throws {
        let h = try DoraHarness()
        try await h.deploy("1.0.0", committed: t0 - hour, deployed: t0)
        for n in 1...10 {
            try await h.fixture.commit(
                "tweak \(n)", files: ["api.yaml": DoraHarness.service("1.0.0", note: "tweak \(n)")],
                date: t0 + Double(n) * hour)
        }
        try await h.fixture.commit("2.0.0", files: ["api.yaml": DoraHarness.service("2.0.0")], date: t0 + 11 * hour)
        try await h.pass(at: t0 + 12 * hour)
        let report = try await h.report()
        #expect(report.deployments == 2)
        // Lead times: 1h (first deployment), then 11h, 10h, ..., 1h for the eleven commits of the second.
        #expect(report.leadTime.changes == 12)
        #expect(approximately(report.leadTime.medianSeconds, 5.5 * hour))
        #expect(approximately(report.leadTime.p90Seconds, 9.9 * hour))
        #expect(report.leadTime.band == .elite)
        #expect(report.changeFailureRate.value == 0)
    }

    @Test("a revert marks the reverted deployment failed and recovers it")
    func revert() async throws {
        let h = try DoraHarness()
        try await h.deploy("1.0.0", committed: t0 - hour, deployed: t0)
        let bad = try await h.deploy("2.0.0", committed: t0 + hour, deployed: t0 + 2 * hour)
        try await h.revert(bad, committed: t0 + 3 * hour, deployed: t0 + 3.5 * hour)
        let report = try await h.report()
        #expect(report.deployments == 3)
        #expect(report.changeFailureRate.failed == 1)
        #expect(approximately(report.changeFailureRate.value, 1.0 / 3))
        #expect(approximately(report.recoveryTime.medianSeconds, 1.5 * hour))
        #expect(report.recoveryTime.band == .high)
        #expect(report.reworkRate.unplanned == 1)
        #expect(approximately(report.leadTime.medianSeconds, hour))
        let records = try await h.store.deployments(DeploymentQuery())
        #expect(records.map(\.version) == ["1.0.0", "2.0.0", "1.0.0"])
        #expect(records[1].failureReason?.hasPrefix("reverted by") == true)
    }

    @Test("a revert of a revert re-applies the change: not a rollback, not a failure of the rollback")
    func revertOfRevert() async throws {
        let h = try DoraHarness()
        try await h.deploy("1.0.0", committed: t0 - hour, deployed: t0)
        let bad = try await h.deploy("2.0.0", committed: t0 + hour, deployed: t0 + 2 * hour)
        let revert = try await h.revert(bad, committed: t0 + 3 * hour, deployed: t0 + 3.5 * hour)
        try await h.revert(revert, committed: t0 + 5 * hour, deployed: t0 + 6 * hour)
        let report = try await h.report()
        #expect(report.deployments == 4)
        #expect(report.changeFailureRate.failed == 1)
        #expect(report.reworkRate.unplanned == 1)
        let records = try await h.store.deployments(DeploymentQuery())
        #expect(records.first?.classification == .feature)
        #expect(records.first?.version == "2.0.0")
        #expect(records.filter(\.failed).map(\.finishedAt) == [t0 + 2 * hour])
    }

    @Test("a rollback to a version two deployments back fails the deployment it replaced")
    func rollbackTwoBack() async throws {
        let h = try DoraHarness()
        try await h.deploy("1.0.0", committed: t0 - hour, deployed: t0)
        try await h.deploy("2.0.0", committed: t0 + day - hour, deployed: t0 + day)
        try await h.deploy("3.0.0", committed: t0 + 2 * day - hour, deployed: t0 + 2 * day)
        try await h.deploy("1.0.0", committed: t0 + 3 * day - hour, deployed: t0 + 3 * day)
        let report = try await h.report()
        #expect(report.deployments == 4)
        #expect(report.changeFailureRate.failed == 1)
        #expect(approximately(report.recoveryTime.medianSeconds, day))
        #expect(report.recoveryTime.band == .low)
        #expect(report.reworkRate.unplanned == 1)
        let failed = try await h.store.deployments(DeploymentQuery()).filter(\.failed)
        #expect(failed.map(\.version) == ["3.0.0"])
        #expect(failed.first?.failureReason == "rolled back to 1.0.0")
    }

    @Test("a hotfix fails the deployment it follows")
    func hotfix() async throws {
        let h = try DoraHarness()
        try await h.deploy("1.0.0", committed: t0 - hour, deployed: t0)
        try await h.deploy("2.0.0", committed: t0 + day - hour, deployed: t0 + day)
        try await h.deploy("2.0.1", committed: t0 + day + hour, deployed: t0 + day + 2 * hour, hotfix: true)
        let report = try await h.report()
        #expect(report.changeFailureRate.failed == 1)
        #expect(approximately(report.recoveryTime.medianSeconds, 2 * hour))
        #expect(report.reworkRate.unplanned == 1)
        let records = try await h.store.deployments(DeploymentQuery())
        #expect(records.first?.classification == .hotfix)
        #expect(records[1].failureReason == "followed by hotfix 2.0.1")
    }

    @Test("a failed rollout counts as a failed deployment, recovered by the next good one")
    func failedRollout() async throws {
        let h = try DoraHarness()
        try await h.deploy("1.0.0", committed: t0 - hour, deployed: t0)
        h.executor.fail(when: { $0.version == "2.0.0" })
        try await h.deploy("2.0.0", committed: t0 + day - hour, deployed: t0 + day)
        try await h.deploy("2.0.1", committed: t0 + day, deployed: t0 + day + 30 * 60)
        let report = try await h.report()
        #expect(report.deployments == 3)
        #expect(report.changeFailureRate.failed == 1)
        #expect(approximately(report.recoveryTime.medianSeconds, 30 * 60))
        #expect(report.recoveryTime.band == .elite)
        #expect(approximately(report.deploymentFrequency.perDay, 2.0 / 60))
        // Lead time only counts changes that reached the environment.
        #expect(report.leadTime.changes == 3)
    }

    @Test("a window boundary that cuts an incident: the failure belongs to the window it was deployed in")
    func windowBoundary() async throws {
        let h = try DoraHarness()
        try await h.deploy("1.0.0", committed: t0 - hour, deployed: t0 + hour)
        let bad = try await h.deploy("2.0.0", committed: t0 + 9 * day - hour, deployed: t0 + 9 * day)
        try await h.revert(bad, committed: t0 + 10 * day + 5 * hour, deployed: t0 + 10 * day + 6 * hour)

        let first = try await h.report(from: t0, to: t0 + 10 * day)
        #expect(first.deployments == 2)
        #expect(first.changeFailureRate.failed == 1)
        #expect(approximately(first.recoveryTime.medianSeconds, day + 6 * hour))
        #expect(first.reworkRate.unplanned == 0)

        let second = try await h.report(from: t0 + 10 * day, to: t0 + 20 * day)
        #expect(second.deployments == 1)
        #expect(second.changeFailureRate.failed == 0)
        #expect(second.recoveryTime.medianSeconds == nil)
        #expect(second.reworkRate.value == 1)
    }

    @Test("an incident not recovered yet is counted as failed and left out of recovery time")
    func unrecovered() async throws {
        let h = try DoraHarness()
        try await h.deploy("1.0.0", committed: t0 - hour, deployed: t0)
        h.executor.fail(when: { $0.version == "2.0.0" })
        try await h.deploy("2.0.0", committed: t0 + hour, deployed: t0 + 2 * hour)
        let report = try await h.report()
        #expect(report.changeFailureRate.failed == 1)
        #expect(report.recoveryTime.medianSeconds == nil)
        #expect(report.recoveryTime.unrecovered == 1)
        #expect(report.warnings.contains { $0.contains("not recovered yet") })
    }

    @Test("no production environment: nothing can be computed, and the report says why")
    func noProduction() async throws {
        let h = try DoraHarness(production: false)
        try await h.deploy("1.0.0", committed: t0 - hour, deployed: t0)
        let report = try await h.report()
        #expect(report.deployments == 0)
        #expect(report.deploymentFrequency.perDay == nil)
        #expect(report.deploymentFrequency.band == nil)
        #expect(report.leadTime.medianSeconds == nil)
        #expect(report.changeFailureRate.value == nil)
        #expect(report.reworkRate.value == nil)
        #expect(report.warnings.contains { $0.contains("no deployment to a production environment") })
        let staging = try await h.report(environment: "prod")
        #expect(staging.deployments == 1)
        #expect(approximately(staging.leadTime.medianSeconds, hour))
    }
}
