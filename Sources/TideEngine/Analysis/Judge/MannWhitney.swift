import Foundation

/// The Mann-Whitney U test (Wilcoxon rank-sum test) of a canary sample against a baseline sample, with the
/// Hodges-Lehmann estimate of the shift between them and its confidence interval.
///
/// It follows R's `wilcox.test(canary, baseline, conf.int = TRUE)` in its normal approximation with the tie
/// and continuity corrections (the one R uses when there are ties or 50 values or more, and the one Kayenta
/// uses for every sample): the interval's ends and the estimate are the roots of the standardised rank-sum
/// statistic as a function of the shift, found with R's `uniroot` (Brent's method, tolerance 1e-4), so the
/// figures agree with R's to its own precision.
public struct MannWhitney: Sendable {
    public enum Alternative: String, Sendable, Codable {
        case twoSided = "two-sided"
        /// The canary is shifted up.
        case greater
        /// The canary is shifted down.
        case less
    }

    public struct Result: Sendable, Hashable, Codable {
        /// W: the rank sum of the canary minus its smallest possible value (R's `statistic`).
        public var w: Double
        public var pValue: Double
        /// Ends of the confidence interval for the shift canary − baseline.
        public var lower: Double
        public var upper: Double
        /// Hodges-Lehmann estimate of the shift (the median of all pairwise differences, approximately).
        public var estimate: Double
    }

    public enum Failure: Error, CustomStringConvertible, Sendable, Equatable {
        case empty
        case allTied

        public var description: String {
            switch self {
            case .empty: "a sample is empty"
            case .allTied: "every value in both samples is the same: no interval can be computed"
            }
        }
    }

    public var confidence: Double
    public var alternative: Alternative
    /// Continuity correction (R's `correct`).
    public var correct: Bool

    public init(confidence: Double = 0.95, alternative: Alternative = .twoSided, correct: Bool = true) {
        self.confidence = confidence
        self.alternative = alternative
        self.correct = correct
    }

    public func test(canary x: [Double], baseline y: [Double]) throws(Failure) -> Result {
        guard !x.isEmpty, !y.isEmpty else { throw .empty }
        let nx = Double(x.count)
        let ny = Double(y.count)

        let statistic = { (shift: Double) -> (dz: Double, sigma: Double) in
            let (ranks, ties) = Self.ranks(x.map { $0 - shift } + y)
            var sum = 0.0
            for index in x.indices { sum += ranks[index] }
            let dz = sum - nx * (nx + 1) / 2 - nx * ny / 2
            let sigma = ((nx * ny / 12) * ((nx + ny + 1) - ties / ((nx + ny) * (nx + ny - 1)))).squareRoot()
            return (dz, sigma)
        }
        let correction = { (dz: Double) -> Double in
            guard correct else { return 0 }
            switch alternative {
            case .twoSided: return dz > 0 ? 0.5 : dz < 0 ? -0.5 : 0
            case .greater: return 0.5
            case .less: return -0.5
            }
        }

        let (z0, sigma0) = statistic(0)
        guard sigma0 > 0 else { throw .allTied }
        let z = (z0 - correction(z0)) / sigma0
        let pValue: Double =
            switch alternative {
            case .twoSided: min(1, 2 * min(Self.normalCDF(z), Self.normalCDF(-z)))
            case .greater: Self.normalCDF(-z)
            case .less: Self.normalCDF(z)
            }

        let shiftMin = x.min()! - y.max()!
        let shiftMax = x.max()! - y.min()!
        var tiedEverywhere = false
        func difference(_ shift: Double, _ quantile: Double) -> Double {
            let (dz, sigma) = statistic(shift)
            guard sigma > 0 else {
                tiedEverywhere = true
                return 0
            }
            return (dz - correction(dz)) / sigma - quantile
        }
        func root(_ quantile: Double) -> Double {
            let low = difference(shiftMin, quantile)
            let high = difference(shiftMax, quantile)
            if low <= 0 { return shiftMin }
            if high >= 0 { return shiftMax }
            return Self.zeroin(shiftMin, shiftMax, low, high, tolerance: 1e-4) { difference($0, quantile) }
        }
        let alpha = 1 - confidence
        let lower: Double
        let upper: Double
        switch alternative {
        case .twoSided:
            lower = root(Self.normalQuantile(1 - alpha / 2))
            upper = root(Self.normalQuantile(alpha / 2))
        case .greater:
            lower = root(Self.normalQuantile(1 - alpha))
            upper = .infinity
        case .less:
            lower = -.infinity
            upper = root(Self.normalQuantile(alpha))
        }
        let estimate = Self.zeroin(
            shiftMin, shiftMax, difference(shiftMin, 0), difference(shiftMax, 0), tolerance: 1e-4
        ) { difference($0, 0) }
        if tiedEverywhere { throw .allTied }
        return Result(w: z0 + nx * ny / 2, pValue: pValue, lower: lower, upper: upper, estimate: estimate)
    }

    /// Average ranks (1-based) of `values`, and Σ(t³ − t) over the groups of t tied values.
    static func ranks(_ values: [Double]) -> ([Double], Double) {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var ties = 0.0
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count && values[order[end]] == values[order[start]] { end += 1 }
            let rank = Double(start + end + 1) / 2
            for position in start..<end { ranks[order[position]] = rank }
            let t = Double(end - start)
            ties += t * t * t - t
            start = end
        }
        return (ranks, ties)
    }

    /// Standard normal distribution function, from the complementary error function.
    static func normalCDF(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }

    /// Standard normal quantile: Newton's method on the distribution function, which converges monotonically
    /// from the mean for either tail (the function is convex below the mean, concave above it).
    static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "a probability strictly between 0 and 1")
        if p == 0.5 { return 0 }
        let tail = min(p, 1 - p)
        var x = 0.0
        for _ in 0..<200 {
            let density = exp(-x * x / 2) / (2 * Double.pi).squareRoot()
            let step = (normalCDF(x) - tail) / density
            x -= step
            if abs(step) <= 1e-15 * max(1, abs(x)) { break }
        }
        return p < 0.5 ? x : -x
    }

    /// Brent's root finder as R's `uniroot` runs it (`R_zeroin2`, after netlib's zeroin): `f(a)` and `f(b)`
    /// have opposite signs; returns within `2·ε·|x| + tolerance/2` of a root, after at most 1000 iterations.
    static func zeroin(
        _ ax: Double, _ bx: Double, _ fax: Double, _ fbx: Double, tolerance: Double,
        _ f: (Double) -> Double
    ) -> Double {
        var a = ax
        var b = bx
        var fa = fax
        var fb = fbx
        var c = a
        var fc = fa
        if fa == 0 { return a }
        if fb == 0 { return b }
        for _ in 0...1000 {
            let previousStep = b - a
            if abs(fc) < abs(fb) {
                a = b
                b = c
                c = a
                fa = fb
                fb = fc
                fc = fa
            }
            let toleranceNow = 2 * Double.ulpOfOne * abs(b) + tolerance / 2
            var step = (c - b) / 2
            if abs(step) <= toleranceNow || fb == 0 { return b }
            if abs(previousStep) >= toleranceNow && abs(fa) > abs(fb) {
                let cb = c - b
                var p: Double
                var q: Double
                if a == c {
                    // Two distinct points: linear interpolation.
                    let t1 = fb / fa
                    p = cb * t1
                    q = 1 - t1
                } else {
                    // Inverse quadratic interpolation.
                    let qa = fa / fc
                    let t1 = fb / fc
                    let t2 = fb / fa
                    p = t2 * (cb * qa * (qa - t1) - (b - a) * (t1 - 1))
                    q = (qa - 1) * (t1 - 1) * (t2 - 1)
                }
                if p > 0 { q = -q } else { p = -p }
                if p < 0.75 * cb * q - abs(toleranceNow * q) / 2 && p < abs(previousStep * q / 2) {
                    step = p / q
                }
            }
            if abs(step) < toleranceNow { step = step > 0 ? toleranceNow : -toleranceNow }
            a = b
            fa = fb
            b += step
            fb = f(b)
            if (fb > 0 && fc > 0) || (fb < 0 && fc < 0) {
                c = a
                fc = fa
            }
        }
        return b
    }
}
