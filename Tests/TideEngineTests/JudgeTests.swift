import Foundation
import Testing

@testable import TideEngine

/// Vectors published with Spinnaker Kayenta's Mann-Whitney tests (kayenta-mannwhitney, MannWhitneySuite:
/// "tie out with R version again" and "tie out intermediate variables"), whose expected figures come from R's
/// `wilcox.test(experiment, control, conf.int = TRUE)`, plus the example in R's own `?wilcox.test` page
/// (Hollander & Wolfe's depression data).
@Suite struct MannWhitneyTests {
    static let againControl: [Double] = [
        1.5, 1.5, 1.0, 2.0, 1.5, 1.5, 1.5, 2.0, 1.0, 1.0, 2.0, 1.5, 1.5, 1.0, 1.5, 1.5, 1.5, 1.5, 1.5, 2.0, 1.0, 1.5,
        3.0, 2.0, 1.0, 1.5, 1.5, 1.5, 2.0, 1.5, 1.0, 1.0, 1.5, 2.5, 2.0, 0.0, 1.0, 2.0, 2.0, 1.5, 3.0, 2.0, 1.0, 2.5,
        0.5, 1.5, 0.5, 2.5, 2.0, 1.5, 1.5, 2.0, 1.0, 4.5, 2.5, 0.5, 2.5, 1.5, 1.5, 1.0, 2.0, 1.0, 2.5, 1.5, 2.0, 1.5,
        3.0, 1.5, 1.5, 1.5, 1.5, 2.0, 1.0, 2.5, 1.0, 1.5, 2.5, 1.5, 2.5, 2.0, 1.5, 1.5, 1.5, 2.5, 1.0, 7.5, 1.5, 3.0,
        5.5, 1.0, 1.5, 2.0, 1.0, 1.5, 2.5, 2.5, 1.0, 1.0, 2.5, 1.5, 1.5, 3.0, 4.0, 1.0, 1.5, 2.0, 1.5, 1.5, 1.5, 2.5,
        1.5, 3.5, 2.5, 1.5, 2.0, 1.0, 4.0, 1.5, 1.0, 1.5, 2.5, 2.5, 2.0, 2.5, 1.5, 1.5, 2.0, 1.0, 1.5, 2.0, 1.5, 1.0,
        2.5, 1.5, 1.5, 2.0, 2.0, 1.0, 1.5, 2.5, 0.5, 2.0, 2.5, 2.0, 1.0, 2.0, 0.5, 1.5, 1.0, 2.5, 1.0, 1.5, 1.0, 7.0,
        1.0, 3.5, 1.5, 2.0, 1.5, 1.5, 2.0, 3.0, 1.5, 1.5, 2.0, 1.5, 2.0, 1.5, 4.0, 2.0, 1.5, 1.5, 1.5, 1.5, 1.5, 0.5,
        2.0, 1.0, 1.5, 0.5,
    ]
    static let againExperiment: [Double] = [
        1.5, 2.0, 5.0, 1.5, 1.5, 8.5, 1.0, 1.0, 2.0, 1.0, 1.5, 0.5, 2.0, 1.5, 2.0, 1.5, 1.0, 2.5, 1.5, 1.5, 2.0, 1.5,
        1.5, 1.5, 2.0, 2.0, 1.0, 5.5, 1.5, 2.0, 1.5, 1.5, 1.0, 2.5, 1.0, 2.0, 1.5, 1.5, 2.0, 2.0, 1.5, 1.5, 1.0, 1.0,
        2.0, 0.5, 1.5, 0.5, 3.5, 1.5, 3.0, 19.0, 0.5, 1.5, 0.5, 1.5, 2.0, 1.5, 1.5, 1.5, 1.5, 2.0, 1.5, 2.0, 2.0, 1.5,
        1.0, 1.5, 1.0, 2.0, 1.0, 2.0, 1.5, 1.5, 3.0, 2.0, 1.5, 1.5, 0.5, 2.0, 1.5, 1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 2.0,
        1.5, 1.0, 1.0, 2.0, 1.5, 1.5, 1.5, 0.5, 1.5, 1.5, 0.5, 1.0, 1.5, 1.5, 1.5, 1.0, 2.0, 2.0, 2.0, 1.5, 1.0, 1.5,
        1.0, 1.0, 1.5, 3.5, 2.0, 1.5, 1.0, 2.0, 1.5, 5.5, 0.5, 2.0, 3.5, 1.5, 1.0, 2.0, 0.5, 2.5, 1.0, 1.5, 0.5, 2.0,
        2.0, 1.0, 0.5, 1.5, 1.0, 1.5, 0.5, 0.5, 1.0, 1.5, 1.0, 1.5, 0.5, 1.5, 1.0, 1.0, 0.5, 1.0, 0.5, 4.0, 1.0, 1.5,
        2.0, 5.5, 1.5, 0.5, 2.0, 1.0, 1.5, 1.0, 1.5, 1.5, 1.0, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 2.0, 0.5, 1.5, 1.0, 2.0,
        1.0, 1.0, 0.5, 1.0,
    ]

    static let intermediateExperiment: [Double] = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.6666666666666572, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.7037037037036811,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5625000000000142, 0.0, 0.0, 0.0, 0.0, 3.3333333333333428, 0.0,
        1.7543859649122737, 0.0, 1.8518518518518476, 0.0, 0.0, 1.8518518518518476, 0.0, 0.0, 1.5151515151515156, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.7857142857142776, 1.3333333333333286, 0.0, 3.1250000000000142,
        1.9607843137255117, 1.4492753623188293, 2.4390243902438868, 1.6393442622950687, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 1.6129032258064484, 1.9607843137255117, 1.5873015873015817, 0.0, 0.0, 2.8169014084507182, 0.0, 0.0,
        3.0303030303030454, 0.0, 0.0, 3.3898305084745743, 0.0, 0.0, 1.234567901234584, 0.0, 0.0, 0.0, 0.0,
        1.7241379310344769, 0.0, 0.0, 0.0, 0.0, 1.6949152542372872, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        1.470588235294116, 0.0, 0.0, 1.3698630136986196, 3.225806451612911, 1.7543859649122879, 3.4482758620689538,
        0.0, 3.3333333333333428, 0.0, 0.0, 0.0, 1.818181818181813, 0.0, 0.0, 1.4285714285714448, 0.0, 0.0,
        1.8867924528301927, 2.0000000000000284, 0.0, 0.0, 0.0, 2.985074626865682, 0.0, 0.0, 1.6666666666666714, 0.0,
        0.0, 1.5625, 1.9230769230769198, 0.0, 1.8518518518518619, 0.0, 2.7027027027027088, 0.0, 0.0, 0.0,
        1.3513513513513544, 0.0, 1.818181818181813, 0.0, 1.6666666666666572, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        1.818181818181813, 0.0, 1.4285714285714164, 0.0, 0.0, 4.1095890410959015, 0.0, 0.0, 0.0, 1.8518518518518619,
        0.0, 0.0, 1.8518518518518476, 1.3888888888888857, 0.0, 0.0, 0.0, 0.0, 1.8867924528301785, 1.4285714285714164,
        0.0, 0.0, 1.5625, 1.8867924528301927, 0.0, 0.0, 0.0, 0.0, 2.040816326530603, 1.818181818181813, 0.0, 0.0,
        1.6393442622950687, 0.0, 1.7241379310344769, 1.5151515151515156, 2.564102564102555, 0.0, 0.0, 0.0, 0.0,
        5.5555555555555571, 0.0, 0.0, 4.0816326530612059, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.5714285714285836,
        0.0, 2.040816326530603, 3.1746031746031633, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ]
    static let intermediateControl: [Double] = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5625000000000142, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        1.3888888888888857, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5384615384615614, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.4925373134328339, 0.0, 0.0, 0.0, 1.6949152542373014, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.470588235294116, 0.0, 0.0, 0.0, 0.0, 1.7543859649122879,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.8518518518518619, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 1.6393442622950687, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.7241379310344769, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5873015873015817, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.4925373134328339, 0.0, 0.0, 0.0, 3.1249999999999858,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.4925373134328339, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.9850746268656536, 0.0, 2.5000000000000284, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.7857142857142776, 0.0, 0.0, 0.0,
    ]

    @Test func tiesOutWithRAtNinetyEightPercent() throws {
        let result = try MannWhitney(confidence: 0.98).test(canary: Self.againExperiment, baseline: Self.againControl)
        #expect(abs(result.lower - -0.4999173250549087) < 1e-6)
        #expect(abs(result.upper - -6.912685789769486E-6) < 1e-6)
    }

    @Test func tiesOutWithRIntermediateFigures() throws {
        let x = Self.intermediateExperiment
        let y = Self.intermediateControl
        #expect(abs(x.min()! - y.max()! - -3.124999999999986) < 1e-9)
        #expect(abs(x.max()! - y.min()! - 5.555555555555557) < 1e-9)
        #expect(abs(MannWhitney.normalQuantile(0.975) - 1.9599639845400536) < 1e-12)
        #expect(abs(MannWhitney.normalQuantile(0.025) - -1.9599639845400536) < 1e-12)
        let result = try MannWhitney(confidence: 0.95).test(canary: x, baseline: y)
        #expect(abs(result.lower - 3.521755377702165E-5) < 1e-6)
        #expect(abs(result.upper - 2.02456461662334E-5) < 1e-6)
        #expect(abs(result.estimate - 2.6279243045155653E-5) < 1e-6)
    }

    /// `?wilcox.test`: x <- c(0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46),
    /// y <- c(1.15, 0.88, 0.90, 0.74, 1.21); W = 35, and the large-sample approximation without continuity
    /// correction, alternative "greater", gives p-value = 0.1103.
    @Test func rHelpPageExample() throws {
        let x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
        let y = [1.15, 0.88, 0.90, 0.74, 1.21]
        let greater = try MannWhitney(alternative: .greater, correct: false).test(canary: x, baseline: y)
        #expect(greater.w == 35)
        #expect(abs(greater.pValue - 0.1103) < 5e-5)
        #expect(greater.upper == .infinity)
        let twoSided = try MannWhitney().test(canary: x, baseline: y)
        // z = (35 - 25 - 0.5) / sqrt(5·10·16/12): two-sided p = 2·(1 − Φ(1.1635)).
        #expect(abs(twoSided.pValue - 0.24463) < 5e-5)
        #expect(twoSided.lower < twoSided.estimate && twoSided.estimate < twoSided.upper)
    }

    @Test func normalQuantileInTheTails() {
        #expect(abs(MannWhitney.normalQuantile(0.01) - -2.326347874040841) < 1e-12)
        #expect(abs(MannWhitney.normalQuantile(0.99) - 2.326347874040841) < 1e-12)
        #expect(abs(MannWhitney.normalQuantile(1e-10) - -6.361340902404056) < 1e-9)
        #expect(MannWhitney.normalQuantile(0.5) == 0)
    }

    @Test func averageRanksAndTies() {
        let (ranks, ties) = MannWhitney.ranks([3, 1, 3, 2, 3])
        #expect(ranks == [4, 1, 4, 2, 4])
        #expect(ties == 24)  // one group of three: 3³ − 3
    }

    @Test func rejectsWhatCannotBeTested() {
        #expect(throws: MannWhitney.Failure.empty) { try MannWhitney().test(canary: [], baseline: [1]) }
        #expect(throws: MannWhitney.Failure.allTied) { try MannWhitney().test(canary: [2, 2], baseline: [2, 2, 2]) }
    }
}

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
