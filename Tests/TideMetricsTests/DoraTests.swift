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

@Suite("DORA: the calculations")
struct DoraCalculationTests {
    @Test("quantiles interpolate between closest ranks (R type 7)")
    func quantiles() {
        #expect(DoraCalculator.quantile([], 0.5) == nil)
        #expect(DoraCalculator.quantile([7], 0.9) == 7)
        #expect(DoraCalculator.quantile([4, 1, 3, 2], 0.5) == 2.5)
        #expect(approximately(DoraCalculator.quantile([1, 2, 3, 4], 0.9), 3.7))
        #expect(DoraCalculator.quantile(Array(1...11).map(Double.init), 0.9) == 10)
    }

    /// Days since 1970 of 2027-02-01, a Monday.
    static let monday = 20_850

    static func bucket(_ days: [Int: Int], weeks: Int = 12) -> FrequencyBucket? {
        DoraCalculator.bucket(rate: Double(days.values.reduce(0, +)) / Double(weeks * 7), days: Double(weeks * 7))
    }

    @Test("frequency buckets come from the rate over the window's days")
    func buckets() {
        var weekdays: [Int: Int] = [:]
        var twiceADay: [Int: Int] = [:]
        var weekly: [Int: Int] = [:]
        var monthly: [Int: Int] = [:]
        for week in 0..<12 {
            for weekday in 0..<5 { weekdays[Self.monday + week * 7 + weekday] = 1 }
            for weekday in 0..<5 { twiceADay[Self.monday + week * 7 + weekday] = 3 }
            weekly[Self.monday + week * 7 + 2] = 1
        }
        for month in 0..<3 { monthly[Self.monday + month * 28 + 1] = 1 }
        #expect(Self.bucket(weekdays) == .daily)
        #expect(Self.bucket(twiceADay) == .onDemand)
        #expect(Self.bucket(weekly) == .weekly)
        #expect(Self.bucket(monthly) == .monthly)
        #expect(Self.bucket([Self.monday + 3: 1]) == .fewer)
        #expect(Self.bucket([:]) == .fewer)
    }

    @Test("the same deployments band the same whatever day the window starts; a short window names no band")
    func calendarIndependent() async throws {
        let store = InMemoryStateStore()
        // Six deployments in seven days (0.86/day), the last on a Saturday.
        let saturday = Date(timeIntervalSince1970: Double(Self.monday + 5) * day + 12 * hour)
        for index in 0..<6 {
            let at = saturday - Double(index) * day
            await store.apply(
                StateWrite(deployments: [
                    DeploymentRecord(
                        id: "d\(index)", target: TargetID(service: "web", environment: "prod"), production: true,
                        revision: ObjectID.blobHash(of: Array("r\(index)".utf8)), version: "\(index)",
                        previousVersion: nil, classification: .feature, startedAt: at, finishedAt: at, succeeded: true)
                ]))
        }
        let calculator = DoraCalculator(store: store)
        for end in 0..<7 {
            // Windows of 7 days ending on each weekday that still hold all six.
            let to = saturday + Double(end) * hour + day
            let report = try await calculator.report(DeploymentFilter(from: to - 7 * day, to: to))
            #expect(report.deploymentFrequency.bucket == .daily, "\(report.deploymentFrequency)")
            #expect(report.deploymentFrequency.band == .high)
        }
        // `--since 1d`: ten deployments in a day is on demand; one is not enough to tell.
        for index in 0..<10 {
            let at = saturday + 10 * day + Double(index) * 600
            await store.apply(
                StateWrite(deployments: [
                    DeploymentRecord(
                        id: "e\(index)", target: TargetID(service: "web", environment: "prod"), production: true,
                        revision: ObjectID.blobHash(of: Array("e\(index)".utf8)), version: "e\(index)",
                        previousVersion: nil, classification: .feature, startedAt: at, finishedAt: at, succeeded: true)
                ]))
        }
        let busy = try await calculator.report(
            DeploymentFilter(from: saturday + 10 * day - hour, to: saturday + 11 * day - hour))
        #expect(busy.deploymentFrequency.bucket == .onDemand && busy.deploymentFrequency.band == .elite)
        let quiet = try await calculator.report(DeploymentFilter(from: saturday - hour, to: saturday + 2 * day))
        #expect(quiet.deploymentFrequency.perDay != nil)
        #expect(quiet.deploymentFrequency.bucket == nil && quiet.deploymentFrequency.band == nil)
        #expect(quiet.warnings.contains { $0.contains("too short to band") }, "\(quiet.warnings)")
    }

    @Test(
        "bands use the 2024 report's clusters",
        arguments: [
            (0.5 * day, DoraBand.elite), (3 * day, .high), (20 * day, .medium), (60 * day, .low),
        ])
    func leadTimeBands(seconds: Double, band: DoraBand) {
        #expect(DoraBands.leadTime(medianSeconds: seconds) == band)
    }

    @Test("failure-rate and recovery bands")
    func otherBands() {
        #expect(DoraBands.changeFailureRate(0.05) == .elite)
        #expect(DoraBands.changeFailureRate(0.15) == .high)
        #expect(DoraBands.changeFailureRate(0.5) == .low)
        #expect(DoraBands.recoveryTime(medianSeconds: 600) == .elite)
        #expect(DoraBands.recoveryTime(medianSeconds: 5 * hour) == .high)
        #expect(DoraBands.recoveryTime(medianSeconds: 3 * day) == .low)
        #expect(DoraBands.frequency(.onDemand) == .elite)
        #expect(DoraBands.frequency(.weekly) == .high)
        #expect(DoraBands.frequency(.monthly) == .medium)
        #expect(DoraBands.frequency(.fewer) == .low)
    }

    @Test("the JSON has every key, with null for what cannot be computed")
    func json() async throws {
        let report = try await DoraCalculator(store: InMemoryStateStore()).report(
            DeploymentFilter(from: t0, to: t0 + day))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(report), as: UTF8.self)
        for fragment in [
            #""deploymentFrequency":{"band":null,"bucket":null,"perDay":null}"#,
            #""leadTime":{"band":null,"changes":0,"medianSeconds":null,"p90Seconds":null}"#,
            #""changeFailureRate":{"band":null,"failed":0,"value":null}"#,
            #""recoveryTime":{"band":null,"medianSeconds":null,"recovered":0,"unrecovered":0}"#,
            #""reworkRate":{"unplanned":0,"value":null}"#, #""deployments":0"#, #""window":{"from":"#,
        ] {
            #expect(text.contains(fragment), "\(fragment) not in \(text)")
        }
    }

    @Test("the in-memory and SQLite stores agree on the same ledger")
    func storesAgree() async throws {
        let scratch = try TemporaryDirectory()
        let sqlite = try SQLiteStateStore(path: scratch.appending("s.sqlite"))
        let memory = InMemoryStateStore()
        var records: [DeploymentRecord] = []
        for n in 0..<40 {
            let at = t0 + Double(n) * 7 * hour
            records.append(
                DeploymentRecord(
                    id: "d\(n)",
                    target: TargetID(service: n % 3 == 0 ? "a" : "b", environment: n % 4 == 0 ? "qa" : "prod"),
                    production: n % 4 != 0, revision: ObjectID.blobHash(of: [UInt8(n)]), version: "\(n)",
                    previousVersion: nil, classification: n % 5 == 0 ? .rollback : .feature, startedAt: at,
                    finishedAt: at, succeeded: n % 6 != 0, failed: n % 6 == 0 || n % 7 == 0,
                    failedAt: n % 6 == 0 ? at : nil, recoveredAt: n % 7 == 0 ? at + Double(n) * 60 : nil,
                    changes: [
                        DeploymentRecord.Change(
                            commit: ObjectID.blobHash(of: [UInt8(n), 1]), committedAt: at - Double(n) * 100)
                    ]))
        }
        try await sqlite.apply(StateWrite(deployments: records))
        await memory.apply(StateWrite(deployments: records))
        for filter in [
            DeploymentFilter(from: t0, to: t0 + 20 * day), DeploymentFilter(from: t0 + day, to: t0 + 5 * day),
            DeploymentFilter(from: t0, to: t0 + 20 * day, environment: "qa"),
            DeploymentFilter(from: t0, to: t0 + 20 * day, service: "a"),
        ] {
            let a = try await DoraCalculator(store: sqlite).report(filter)
            let b = try await DoraCalculator(store: memory).report(filter)
            #expect(a == b)
            #expect(a.deployments > 0)
        }
    }
}
