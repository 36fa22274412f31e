public import Foundation
public import TideState

/// The five DORA metrics over one window, computed from Tide's own deployment ledger.
/// Encoded as `tide dora --json`; a value that cannot be computed yet is `null`, never 0.
public struct DoraReport: Sendable, Codable, Equatable {
    public struct Window: Sendable, Codable, Equatable {
        public var from: Date
        public var to: Date
    }

    public struct Frequency: Sendable, Codable, Equatable {
        public var perDay: Double?
        public var bucket: FrequencyBucket?
        public var band: DoraBand?
    }

    public struct LeadTime: Sendable, Codable, Equatable {
        public var medianSeconds: Double?
        public var p90Seconds: Double?
        public var band: DoraBand?
        /// How many commits the figures come from.
        public var changes: Int
    }

    public struct FailureRate: Sendable, Codable, Equatable {
        public var value: Double?
        public var failed: Int
        public var band: DoraBand?
    }

    public struct Recovery: Sendable, Codable, Equatable {
        public var medianSeconds: Double?
        public var band: DoraBand?
        public var recovered: Int
        /// Failed deployments of the window not recovered yet (left out of the median).
        public var unrecovered: Int
    }

    public struct Rework: Sendable, Codable, Equatable {
        public var value: Double?
        public var unplanned: Int
    }

    public var window: Window
    /// Deployments that finished in the window, successful or not.
    public var deployments: Int
    public var deploymentFrequency: Frequency
    public var leadTime: LeadTime
    public var changeFailureRate: FailureRate
    public var recoveryTime: Recovery
    public var reworkRate: Rework
    /// Problems with the figures (a small sample), for people.
    public var warnings: [String]
}

/// Computes DORA reports. Counting and filtering happen in the state store (SQL over covering indexes); only
/// per-day counts, lead times and recovery times come back to be ranked here.
public struct DoraCalculator: Sendable {
    public let store: any DeploymentLedger
    /// Below this many deployments in a window the figures get a small-sample warning.
    public static let smallSample = 20

    public init(store: any DeploymentLedger) {
        self.store = store
    }

    public func report(_ filter: DeploymentFilter) async throws -> DoraReport {
        let counts = try await store.deploymentCounts(filter)
        let leads = try await store.leadTimes(filter)
        let recovery = try await store.recoveryTimes(filter)
        let everDeployed = try await store.firstDeployment(filter).map { $0 < filter.to } ?? false

        let days = max(filter.to.timeIntervalSince(filter.from) / 86_400, 1.0 / 24)
        var frequency = DoraReport.Frequency(perDay: nil, bucket: nil, band: nil)
        var short: String?
        if everDeployed {
            let rate = Double(counts.succeeded) / days
            let bucket = Self.bucket(rate: rate, days: days)
            frequency = DoraReport.Frequency(perDay: rate, bucket: bucket, band: bucket.map(DoraBands.frequency))
            if bucket == nil {
                short =
                    "the window (\(Self.days(days))) is too short to band a deployment frequency of "
                    + String(format: "%.2f", rate) + "/day: that takes at least \(Self.days(Self.daysNeeded(rate)))"
            }
        }

        let sortedLeads = leads.sorted()
        let median = Self.quantile(sorted: sortedLeads, 0.5)
        let lead = DoraReport.LeadTime(
            medianSeconds: median, p90Seconds: Self.quantile(sorted: sortedLeads, 0.9),
            band: median.map(DoraBands.leadTime(medianSeconds:)), changes: leads.count)

        let rate = counts.total > 0 ? Double(counts.failed) / Double(counts.total) : nil
        let failure = DoraReport.FailureRate(
            value: rate, failed: counts.failed, band: rate.map(DoraBands.changeFailureRate))

        let recoveryMedian = Self.quantile(recovery.seconds, 0.5)
        let recoveryTime = DoraReport.Recovery(
            medianSeconds: recoveryMedian, band: recoveryMedian.map(DoraBands.recoveryTime(medianSeconds:)),
            recovered: recovery.seconds.count, unrecovered: recovery.unrecovered)

        let rework = DoraReport.Rework(
            value: counts.total > 0 ? Double(counts.unplanned) / Double(counts.total) : nil,
            unplanned: counts.unplanned)

        var warnings: [String] = []
        if !everDeployed {
            warnings.append(
                filter.environment == nil
                    ? "no deployment to a production environment yet (mark one with spec.production: true)"
                    : "no deployment to \(filter.environment!) yet")  // environment checked just above
        } else if counts.total < Self.smallSample {
            warnings.append(
                "only \(counts.total) deployment(s) in the window: too few for the figures to mean much")
        }
        if let short { warnings.append(short) }
        if recovery.unrecovered > 0 {
            warnings.append("\(recovery.unrecovered) failed deployment(s) not recovered yet: left out of recovery time")
        }
        return DoraReport(
            window: .init(from: filter.from, to: filter.to), deployments: counts.total,
            deploymentFrequency: frequency, leadTime: lead, changeFailureRate: failure, recoveryTime: recoveryTime,
            reworkRate: rework, warnings: warnings)
    }

    /// The q-quantile by linear interpolation between closest ranks (R's type 7, as spreadsheets and
    /// BigQuery's PERCENTILE_CONT compute it); nil for no values.
    public static func quantile(_ values: [Double], _ q: Double) -> Double? {
        quantile(sorted: values.sorted(), q)
    }

    /// `quantile` of values already in ascending order.
    public static func quantile(sorted: [Double], _ q: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let fraction = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }

    /// The deployment frequency bucket of a rate (successful deployments per day over the window's days —
    /// never calendar weeks, so the same deployments give the same answer whatever day the window starts on):
    ///
    /// | rate | bucket | band |
    /// |---|---|---|
    /// | more than one a day | on demand | elite |
    /// | 3 days in 7 or more, up to one a day | daily | high |
    /// | once a week or more | weekly | high |
    /// | once a month (30 days) or more | monthly | medium |
    /// | less | fewer | low |
    ///
    /// Nil when the window is too short to tell: a bucket needs a window as long as the period it names (a day
    /// for on demand, a week for daily and weekly, 30 days for monthly and fewer).
    public static func bucket(rate: Double, days: Double) -> FrequencyBucket? {
        guard days >= daysNeeded(rate) - 1e-9 else { return nil }
        if rate > 1 { return .onDemand }
        if rate >= 3.0 / 7 { return .daily }
        if rate >= 1.0 / 7 - 1e-12 { return .weekly }
        if rate >= 1.0 / 30 - 1e-12 { return .monthly }
        return .fewer
    }

    /// The shortest window that can band `rate`.
    static func daysNeeded(_ rate: Double) -> Double {
        if rate > 1 { return 1 }
        if rate >= 1.0 / 7 - 1e-12 { return 7 }
        return 30
    }

    /// `7 days`, `1 day`, `1.5 days`.
    static func days(_ value: Double) -> String {
        let text = value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
        return text + (value == 1 ? " day" : " days")
    }
}

// `tide dora --json` writes a value that cannot be computed as an explicit null: the synthesized encoders would
// leave the key out instead.
extension DoraReport.Frequency {
    enum CodingKeys: String, CodingKey { case perDay, bucket, band }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(perDay, forKey: .perDay)
        try c.encode(bucket, forKey: .bucket)
        try c.encode(band, forKey: .band)
    }
}

extension DoraReport.LeadTime {
    enum CodingKeys: String, CodingKey { case medianSeconds, p90Seconds, band, changes }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(medianSeconds, forKey: .medianSeconds)
        try c.encode(p90Seconds, forKey: .p90Seconds)
        try c.encode(band, forKey: .band)
        try c.encode(changes, forKey: .changes)
    }
}

extension DoraReport.FailureRate {
    enum CodingKeys: String, CodingKey { case value, failed, band }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(value, forKey: .value)
        try c.encode(failed, forKey: .failed)
        try c.encode(band, forKey: .band)
    }
}

extension DoraReport.Recovery {
    enum CodingKeys: String, CodingKey { case medianSeconds, band, recovered, unrecovered }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(medianSeconds, forKey: .medianSeconds)
        try c.encode(band, forKey: .band)
        try c.encode(recovered, forKey: .recovered)
        try c.encode(unrecovered, forKey: .unrecovered)
    }
}

extension DoraReport.Rework {
    enum CodingKeys: String, CodingKey { case value, unplanned }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(value, forKey: .value)
        try c.encode(unplanned, forKey: .unplanned)
    }
}
