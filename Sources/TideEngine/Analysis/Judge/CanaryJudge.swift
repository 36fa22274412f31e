import Foundation

/// Compares a candidate's samples with the stable version's, metric by metric, the way Spinnaker's Kayenta
/// (NetflixACAJudge) does: each metric is classified High, Low, Pass or NoData from a Mann-Whitney confidence
/// interval for the shift, the passing share of the metrics' weights is the 0–100 score, and the score
/// against the pass and marginal thresholds is the verdict. Every figure it used is kept in the report, so a
/// score can be read, not just trusted.
public struct CanaryJudge: Sendable {
    public enum Direction: String, Sendable, Codable, CaseIterable {
        /// Higher is worse (latency, errors): only High counts against the candidate.
        case increase
        /// Lower is worse (throughput, conversions): only Low counts against the candidate.
        case decrease
        /// Any significant change counts against it.
        case either
    }

    public struct Metric: Sendable {
        public var name: String
        public var canary: [Double]
        public var baseline: [Double]
        public var direction: Direction
        /// A critical metric that fails fails the whole comparison, whatever the score.
        public var critical: Bool
        public var weight: Double
        /// A significant shift within this fraction of the baseline's mean is still a pass (0.1: up to 10 %).
        public var tolerance: Double

        public init(
            name: String, canary: [Double], baseline: [Double], direction: Direction = .increase,
            critical: Bool = false, weight: Double = 1, tolerance: Double = 0
        ) {
            self.name = name
            self.canary = canary
            self.baseline = baseline
            self.direction = direction
            self.critical = critical
            self.weight = weight
            self.tolerance = tolerance
        }
    }

    public enum Classification: String, Sendable, Codable {
        case high = "High"
        case low = "Low"
        case pass = "Pass"
        case noData = "NoData"
    }

    public struct Summary: Sendable, Hashable, Codable {
        public var count: Int
        public var mean: Double
        public var median: Double
        public var min: Double
        public var max: Double

        init?(_ values: [Double]) {
            guard !values.isEmpty else { return nil }
            let sorted = values.sorted()
            count = sorted.count
            mean = sorted.reduce(0, +) / Double(sorted.count)
            median =
                sorted.count % 2 == 1
                ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            min = sorted[0]
            max = sorted[sorted.count - 1]
        }
    }

    public struct MetricResult: Sendable, Hashable, Codable {
        public var name: String
        public var classification: Classification
        /// Whether the classification counts against the candidate.
        public var failed: Bool
        public var critical: Bool
        public var weight: Double
        public var reason: String
        public var canary: Summary?
        public var baseline: Summary?
        /// Canary mean ÷ baseline mean, when the baseline's mean is not 0.
        public var ratio: Double?
        public var test: MannWhitney.Result?
    }

    public enum Verdict: String, Sendable, Codable {
        case pass, marginal, fail
        /// No metric had data on both sides: nothing was compared.
        case noData = "no-data"
    }

    public struct Report: Sendable, Hashable, Codable {
        public var score: Double?
        public var verdict: Verdict
        public var passThreshold: Double
        public var marginalThreshold: Double
        public var confidence: Double
        public var metrics: [MetricResult]

        /// One line: the score, the thresholds, and each metric with the figures behind its class.
        public var explanation: String {
            let head =
                switch verdict {
                case .noData: "no data to compare"
                default:
                    "score \(Self.format(score ?? 0)) (pass ≥ \(Self.format(passThreshold)), marginal ≥ "
                        + "\(Self.format(marginalThreshold))): \(verdict.rawValue)"
                }
            return ([head] + metrics.map { "\($0.name) \($0.classification.rawValue): \($0.reason)" })
                .joined(separator: "; ")
        }

        static func format(_ value: Double) -> String {
            if value.isInfinite { return value > 0 ? "∞" : "-∞" }
            if value == value.rounded() && abs(value) < 1e9 { return String(Int(value)) }
            let magnitude = abs(value)
            let digits = magnitude >= 100 ? 1 : magnitude >= 1 ? 2 : 4
            return String(format: "%.\(digits)f", value)
        }
    }

    public var confidence: Double
    public var passThreshold: Double
    public var marginalThreshold: Double

    public init(confidence: Double = 0.98, pass: Double = 95, marginal: Double = 75) {
        self.confidence = confidence
        self.passThreshold = pass
        self.marginalThreshold = marginal
    }

    public func judge(_ metrics: [Metric]) -> Report {
        let results = metrics.map(classify)
        var report = Report(
            score: nil, verdict: .noData, passThreshold: passThreshold, marginalThreshold: marginalThreshold,
            confidence: confidence, metrics: results)
        let measured = results.filter { $0.classification != .noData }
        if results.contains(where: { $0.critical && $0.classification == .noData }) || measured.isEmpty {
            return report
        }
        let total = measured.reduce(0) { $0 + $1.weight }
        let passing = measured.filter { !$0.failed }.reduce(0) { $0 + $1.weight }
        let score = total > 0 ? 100 * passing / total : 0
        if measured.contains(where: { $0.critical && $0.failed }) {
            report.score = 0
            report.verdict = .fail
            return report
        }
        report.score = score
        report.verdict = score >= passThreshold ? .pass : score >= marginalThreshold ? .marginal : .fail
        return report
    }

    func classify(_ metric: Metric) -> MetricResult {
        let canary = metric.canary.filter(\.isFinite)
        let baseline = metric.baseline.filter(\.isFinite)
        var result = MetricResult(
            name: metric.name, classification: .pass, failed: false, critical: metric.critical,
            weight: metric.weight, reason: "", canary: Summary(canary), baseline: Summary(baseline))
        guard let canarySummary = result.canary, let baselineSummary = result.baseline else {
            result.classification = .noData
            result.reason =
                "no data from the \(canary.isEmpty ? "canary" : "baseline")"
                + (metric.critical ? " for a critical metric" : "; left out of the score")
            return result
        }
        result.ratio = baselineSummary.mean != 0 ? canarySummary.mean / baselineSummary.mean : nil
        let sides =
            "canary median \(Report.format(canarySummary.median)) vs baseline "
            + "\(Report.format(baselineSummary.median)), n = \(canarySummary.count)/\(baselineSummary.count)"
        if canary.sorted() == baseline.sorted() || Set(canary + baseline).count == 1 {
            result.reason = "identical samples (\(sides))"
            return result
        }
        let test: MannWhitney.Result
        do {
            test = try MannWhitney(confidence: confidence).test(canary: canary, baseline: baseline)
        } catch {
            result.reason = "\(error) (\(sides))"
            return result
        }
        result.test = test
        let percent = Report.format(confidence * 100)
        let figures =
            "\(sides), mean ×\(result.ratio.map(Report.format) ?? "∞"), shift \(Report.format(test.estimate)) "
            + "[\(percent)% CI \(Report.format(test.lower)) … \(Report.format(test.upper))], "
            + "p = \(Report.format(test.pValue))"
        let allowance = metric.tolerance * abs(baselineSummary.mean)
        let high = test.lower > 0 && canarySummary.mean > baselineSummary.mean + allowance
        let low = test.upper < 0 && canarySummary.mean < baselineSummary.mean - allowance
        if high {
            result.classification = .high
            result.failed = metric.direction != .decrease
            result.reason = (result.failed ? "" : "higher, which this metric allows: ") + figures
        } else if low {
            result.classification = .low
            result.failed = metric.direction != .increase
            result.reason = (result.failed ? "" : "lower, which this metric allows: ") + figures
        } else {
            result.reason =
                (test.lower > 0 || test.upper < 0
                    ? "shifted within the \(Report.format(metric.tolerance * 100))% tolerance: "
                    : "no significant shift: ") + figures
        }
        return result
    }
}
