/// A DORA performance band.
public enum DoraBand: String, Sendable, Codable, CaseIterable, Comparable {
    case elite, high, medium, low

    public static func < (lhs: DoraBand, rhs: DoraBand) -> Bool {
        allCases.firstIndex(of: lhs)! > allCases.firstIndex(of: rhs)!  // every case is in allCases
    }
}

/// How often a team deploys, bucketed the way Four Keys does.
public enum FrequencyBucket: String, Sendable, Codable {
    case onDemand = "on demand"
    case daily, weekly, monthly, fewer
}

/// The software delivery performance clusters of the 2024 Accelerate State of DevOps report (DORA):
///
/// | metric | elite | high | medium | low |
/// |---|---|---|---|---|
/// | deployment frequency | on demand (several a day) | daily to weekly | weekly to monthly | monthly to six-monthly |
/// | change lead time | < 1 day | 1 day – 1 week | 1 week – 1 month | 1 – 6 months |
/// | change failure rate | 5 % | 20 % | 10 % | 40 % |
/// | failed deployment recovery time | < 1 hour | < 1 day | < 1 day | 1 week – 1 month |
///
/// A value gets the best band whose figure it meets, and `low` when it meets none. The report's failure rates are
/// not monotonic (medium's 10 % is better than high's 20 %), so a rate between 5 % and 20 % is `high`; and high
/// and medium share "< 1 day" for recovery, so recovery is never `medium`.
public enum DoraBands {
    static let hour = 3600.0
    static let day = 86_400.0

    public static func frequency(_ bucket: FrequencyBucket) -> DoraBand {
        switch bucket {
        case .onDemand: .elite
        case .daily, .weekly: .high
        case .monthly: .medium
        case .fewer: .low
        }
    }

    public static func leadTime(medianSeconds: Double) -> DoraBand {
        if medianSeconds < day { return .elite }
        if medianSeconds < 7 * day { return .high }
        if medianSeconds < 30 * day { return .medium }
        return .low
    }

    public static func changeFailureRate(_ rate: Double) -> DoraBand {
        if rate <= 0.05 { return .elite }
        if rate <= 0.20 { return .high }
        return .low
    }

    public static func recoveryTime(medianSeconds: Double) -> DoraBand {
        if medianSeconds < hour { return .elite }
        if medianSeconds < day { return .high }
        return .low
    }
}
