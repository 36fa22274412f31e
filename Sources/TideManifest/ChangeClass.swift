import Foundation

/// What kind of change a deployment is.
public enum ChangeClass: String, Sendable, Codable, CaseIterable {
    case feature = "FEATURE"
    case config = "CONFIG"
    case rollback = "ROLLBACK"
    case hotfix = "HOTFIX"
    case removal = "REMOVAL"
    /// A change that brings schema migrations.
    case migration = "MIGRATION"

    /// Unplanned work: what DORA's rework rate counts.
    public var isUnplanned: Bool { self == .rollback || self == .hotfix }
}

/// How risky a change is; policy can demand gates by risk.
public enum RiskLevel: String, Sendable, Codable, CaseIterable {
    case low = "LOW"
    case medium = "MEDIUM"
    case high = "HIGH"

    /// Derived from the change class, the environment and the strategy: rollbacks are low; anything outside
    /// production is low (a hotfix: medium); in production a config change or a removal is medium, a new version
    /// is medium with a progressive strategy and high with recreate (big bang), and a hotfix is high.
    public static func of(_ change: ChangeClass, production: Bool, strategy: StrategyType) -> RiskLevel {
        switch change {
        case .rollback: return .low
        case .hotfix: return production ? .high : .medium
        case .config, .removal: return production ? .medium : .low
        case .migration: return production ? .high : .medium
        case .feature: return production ? (strategy == .recreate ? .high : .medium) : .low
        }
    }
}
