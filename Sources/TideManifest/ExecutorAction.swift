import Foundation

/// What an executor is asked to do (DESIGN.md §4). Raw values are `TIDE_ACTION`.
public enum ExecutorAction: String, Sendable, Codable, CaseIterable {
    case deploy
    case setWeight = "set-weight"
    case promote
    case rollback
    case remove
    case health
    /// Shadow: mirror `weight` % of traffic to the candidate; its answers are discarded.
    case mirror
    /// A/B: send the requests that match `traffic.match` to the candidate.
    case split
    /// Blue-green: the switch is final; the old side (`previousVersion`) may go.
    case scaleDown = "scale-down"
    /// An analysis `command` provider taking one measurement (TIDE_METRIC names it; stdout is the result).
    case measure
}
