public import Foundation
public import TideManifest
public import TideState

/// One event as `tide history --json` prints it (and the service answers), with DORA's verdict on the
/// deployment it finished.
public struct HistoryEntry: Encodable, Sendable {
    public var id: Int64?
    public var time: Date
    public var kind: String
    public var service: String?
    public var environment: String?
    public var revision: String?
    public var version: String?
    public var previousVersion: String?
    public var classification: String?
    public var message: String
    public var details: JSONValue?
    /// For a finished deployment: whether DORA counts it as failed (needed intervention), and why.
    public var countedFailed: Bool?
    public var failureReason: String?

    /// `deployment`: the record of the deployment the event finished (`deploymentID(_:)`), if any.
    public init(_ event: Event, deployment: DeploymentRecord?) {
        id = event.id
        time = event.time
        kind = event.kind.rawValue
        service = event.target?.service
        environment = event.target?.environment
        revision = event.revision?.hex
        version = event.version
        previousVersion = event.previousVersion
        classification = event.classification?.rawValue
        message = event.message
        details = event.details
        countedFailed = deployment?.failed
        failureReason = deployment?.failureReason
    }

    /// The kinds `tide history` shows without `--all`.
    public static let summaryKinds: [Event.Kind] = [
        .deploymentStarted, .deploymentSucceeded, .deploymentFailed, .targetRemoved, .revisionAccepted,
        .revisionRejected, .approvalGranted, .promotionCommitted, .deploymentRolledBack, .revertCommitted,
        .rolloutPaused, .rolloutResumed, .rolloutPromoted, .rolloutAborted, .rolloutRetried, .rolloutRefused,
        .migrationApplied, .migrationFailed, .reconcileError, .deploymentSuperseded, .fetchFailed, .fetchRecovered,
        .pushRejected, .pushFailed, .targetSuspended, .targetUnsuspended, .rollbackFailed,
    ]

    /// The MESSAGE column: the event's message, and why DORA counts its deployment failed when the message does
    /// not already say it (a deployment that went live and was later reverted, rolled back or hotfixed).
    public static func message(_ event: Event, record: DeploymentRecord?) -> String {
        guard let record, record.failed else { return event.message }
        let reason = record.failureReason ?? "needed intervention"
        return event.message.contains(reason) ? event.message : "\(event.message); counted failed: \(reason)"
    }

    /// The deployment a finished-deployment event belongs to.
    public static func deploymentID(_ event: Event) -> String? {
        guard event.kind == .deploymentSucceeded || event.kind == .deploymentFailed,
            case .object(let details)? = event.details, case .string(let id)? = details["deploymentId"]
        else { return nil }
        return id
    }

}
