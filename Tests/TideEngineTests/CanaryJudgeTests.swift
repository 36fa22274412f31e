import Foundation
import Testing

@testable import TideEngine

@Suite struct CanaryJudgeTests {
    /// A deterministic spread of values around `center` (no random generator: the test must not flake).
    static func sample(_ center: Double, spread: Double, count: Int = 40) -> [Double] {
        (0..<count).map { center + spread * sin(Double($0) * 1.7) }
    }

    @Test func aSlowerCanaryIsHighAndFailsTheScore() {
        let judge = CanaryJudge()
        let report = judge.judge([
            .init(name: "latency", canary: Self.sample(130, spread: 10), baseline: Self.sample(100, spread: 10)),
            .init(name: "errors", canary: Self.sample(1, spread: 0.5), baseline: Self.sample(1, spread: 0.5)),
        ])
        #expect(report.metrics.map(\.classification) == [.high, .pass])
        #expect(report.score == 50)
        #expect(report.verdict == .fail)
        let latency = report.metrics[0]
        #expect(latency.test!.lower > 0)
        #expect(abs(latency.test!.estimate - 30) < 2)
        #expect(abs(latency.ratio! - 1.3) < 0.01)
        #expect(report.explanation.hasPrefix("score 50 (pass ≥ 95, marginal ≥ 75): fail; latency High: canary median"))
        #expect(report.explanation.contains("98% CI"))
    }

    @Test func directionToleranceWeightsAndThresholds() {
        let judge = CanaryJudge(pass: 90, marginal: 60)
        let report = judge.judge([
            // Faster: a Low that a latency metric allows.
            .init(name: "latency", canary: Self.sample(80, spread: 5), baseline: Self.sample(100, spread: 5)),
            // Fewer orders: Low counts against a metric whose decrease is bad.
            .init(
                name: "orders", canary: Self.sample(80, spread: 5), baseline: Self.sample(100, spread: 5),
                direction: .decrease, weight: 1),
            // 3 % slower but within a 5 % tolerance.
            .init(
                name: "cpu", canary: Self.sample(103, spread: 1), baseline: Self.sample(100, spread: 1),
                weight: 2, tolerance: 0.05),
        ])
        #expect(report.metrics.map(\.classification) == [.low, .low, .pass])
        #expect(report.metrics.map(\.failed) == [false, true, false])
        #expect(report.score == 75)
        #expect(report.verdict == .marginal)
        #expect(report.metrics[0].reason.hasPrefix("lower, which this metric allows"))
        #expect(report.metrics[2].reason.hasPrefix("shifted within the 5% tolerance"))
    }

    @Test func aFailingCriticalMetricFailsWhateverTheScore() {
        let report = CanaryJudge(pass: 50, marginal: 25).judge([
            .init(
                name: "errors", canary: Self.sample(5, spread: 1), baseline: Self.sample(1, spread: 0.2),
                critical: true),
            .init(name: "a", canary: Self.sample(1, spread: 1), baseline: Self.sample(1, spread: 1)),
            .init(name: "b", canary: Self.sample(1, spread: 1), baseline: Self.sample(1, spread: 1)),
        ])
        #expect(report.score == 0)
        #expect(report.verdict == .fail)
    }

    @Test func noDataIsNeverAPass() {
        let judge = CanaryJudge()
        let nothing = judge.judge([.init(name: "latency", canary: [], baseline: [1, 2, 3])])
        #expect(nothing.verdict == .noData)
        #expect(nothing.score == nil)
        #expect(
            nothing.explanation == "no data to compare; latency NoData: no data from the canary; left out of the score")
        // A critical metric without data leaves the comparison undecided, even when others pass.
        let critical = judge.judge([
            .init(name: "errors", canary: [.nan], baseline: [1], critical: true),
            .init(name: "latency", canary: [1, 2, 3], baseline: [1, 2, 3]),
        ])
        #expect(critical.verdict == .noData)
        // A non-critical one is left out of the score.
        let partial = judge.judge([
            .init(name: "errors", canary: [], baseline: [1]),
            .init(name: "latency", canary: [1, 2, 3], baseline: [3, 2, 1]),
        ])
        #expect(partial.score == 100)
        #expect(partial.verdict == .pass)
        #expect(partial.metrics[1].reason.hasPrefix("identical samples"))
    }
}
