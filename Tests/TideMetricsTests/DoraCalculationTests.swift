import Foundation
import Testing
import TideEngine
import TideGit
import TideManifest
import TideMetrics
import TideState
import TideTestSupport

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
