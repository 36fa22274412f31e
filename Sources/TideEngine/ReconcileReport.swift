public import Foundation
public import TideExecutors
public import TideGit
public import TideManifest
import TideState

/// What happened to one target in a pass.
public struct TargetOutcome: Sendable, Hashable, Codable {
    public enum Result: String, Sendable, Codable {
        case deployed, removed, failed, unchanged, held, blocked
        /// Gates hold the deployment for now (approval, window, freeze, bake, an upstream environment).
        case waiting
        /// A rollout under way that continues at a later pass (a timed pause, or a pause until `tide promote`).
        case progressing
        /// `tide suspend`: left alone until `tide unsuspend`.
        case suspended
    }

    public var target: TargetID
    public var result: Result
    public var fromVersion: String?
    public var toVersion: String?
    public var classification: ChangeClass?
    public var message: String?
    /// How many executor calls this pass made for the target.
    public var executorCalls: Int
    /// When the target has something to do next by itself (a pause ending, a gate opening).
    public var nextDue: Date? = nil
}

/// The result of one reconcile pass.
public struct ReconcileReport: Sendable, Codable {
    /// What the branch points to.
    public var head: ObjectID
    /// The revision whose desired state was applied: `head`, or the last good one when `head` was rejected.
    public var applied: ObjectID?
    /// Why `head` was rejected, when it was.
    public var rejected: [Diagnostic]
    public var outcomes: [TargetOutcome]
    /// Versions this pass committed to the config repo as environments' versions (`promotion: auto`).
    public var promotions: [Promotion] = []
    /// Auto-promotions waiting for a bake to end, with when they are due.
    public var scheduledPromotions: [ScheduledPromotion] = []
    /// Contracts and downs this pass ran, or that wait (expands run with their target's rollout).
    public var migrations: [MigrationOutcome] = []

    /// True when the pass has something to report as a failure (exit status 1): a rejected revision, or a
    /// target that failed, is held at a failed state, or is blocked by one. Scripts can rely on exit 0 meaning
    /// "converged".
    public var hasFailures: Bool {
        !rejected.isEmpty || outcomes.contains { [.failed, .blocked, .held].contains($0.result) }
            || migrations.contains { $0.result == .failed }
    }

    public var executorCalls: Int { outcomes.reduce(0) { $0 + $1.executorCalls } }

    /// When something is due next by itself: a pause ending, a gate opening, a contract, an auto-promotion.
    public var nextDue: Date? {
        (outcomes.compactMap(\.nextDue) + migrations.compactMap(\.nextDue) + scheduledPromotions.map(\.due)).min()
    }
}

/// A migration phase a pass ran, or that waits, in one environment.
public struct MigrationOutcome: Sendable, Hashable, Codable {
    public enum Result: String, Sendable, Codable {
        case applied, waiting, failed
        /// Reported, never acted on: another install's, abandoned, or a down that waits.
        case leftAlone = "left-alone"
    }

    /// The phase an outcome is about: one of the history's phases, or the whole history ("-" in JSON: a history
    /// that cannot be read, a migration left alone).
    public enum Phase: Sendable, Hashable, Codable, CustomStringConvertible {
        case of(MigrationRecord.Phase)
        case whole

        public var description: String {
            switch self {
            case .of(let phase): phase.rawValue
            case .whole: "-"
            }
        }

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            if text == "-" {
                self = .whole
            } else if let phase = MigrationRecord.Phase(rawValue: text) {
                self = .of(phase)
            } else {
                throw DecodingError.dataCorrupted(
                    DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "no phase \(text)"))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(description)
        }
    }

    public var migration: String
    public var environment: String
    /// expand, backfill, contract or down (or another install's use), or the whole history.
    public var phase: Phase
    public var result: Result
    public var message: String
    public var nextDue: Date?

    public init(
        migration: String, environment: String, phase: Phase, result: Result, message: String, nextDue: Date? = nil
    ) {
        self.migration = migration
        self.environment = environment
        self.phase = phase
        self.result = result
        self.message = message
        self.nextDue = nextDue
    }
}
