import ArgumentParser
import Foundation
import TideManifest
import TideState

/// `tide history`: the event log, newest first.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Show deployments, rollbacks and rejected revisions, newest first.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Only this service.")
    var service: String?

    @Option(name: .customLong("env"), help: "Only this environment.")
    var environment: String?

    @Option(name: .long, help: "At most this many events.")
    var limit: Int = 50

    @Flag(name: .long, help: "Every event, including each executor step.")
    var all = false

    @Flag(name: .long, help: "Print the events as JSON.")
    var json = false

    static let summaryKinds: [Event.Kind] = [
        .deploymentStarted, .deploymentSucceeded, .deploymentFailed, .targetRemoved, .revisionAccepted,
        .revisionRejected, .approvalGranted, .promotionCommitted, .deploymentRolledBack, .revertCommitted,
        .rolloutPaused, .rolloutResumed, .rolloutPromoted, .rolloutAborted, .rolloutRetried, .rolloutRefused,
        .migrationApplied, .migrationFailed, .reconcileError, .deploymentSuperseded, .fetchFailed, .fetchRecovered,
        .pushRejected, .pushFailed, .targetSuspended, .targetUnsuspended, .rollbackFailed,
    ]

    struct EventOutput: Encodable {
        var id: Int64?
        var time: Date
        var kind: String
        var service: String?
        var environment: String?
        var revision: String?
        var version: String?
        var previousVersion: String?
        var classification: String?
        var message: String
        var details: JSONValue?
        /// For a finished deployment: whether DORA counts it as failed (needed intervention), and why.
        var countedFailed: Bool?
        var failureReason: String?
    }

    func run() async throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
        let repository = try? global.openRepository()
        let store = try global.openStore(for: repository)
        let events = try await store.events(
            EventQuery(
                service: service, environment: environment, kinds: all ? nil : Self.summaryKinds, limit: limit))
        let ids = events.compactMap(Self.deploymentID)
        let records = ids.isEmpty ? [] : try await store.deployments(DeploymentQuery(ids: ids, limit: ids.count))
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        func record(_ event: Event) -> DeploymentRecord? { Self.deploymentID(event).flatMap { byID[$0] } }
        if json {
            try printJSON(
                events.map {
                    EventOutput(
                        id: $0.id, time: $0.time, kind: $0.kind.rawValue, service: $0.target?.service,
                        environment: $0.target?.environment, revision: $0.revision?.hex, version: $0.version,
                        previousVersion: $0.previousVersion, classification: $0.classification?.rawValue,
                        message: $0.message, details: $0.details, countedFailed: record($0)?.failed,
                        failureReason: record($0)?.failureReason)
                })
            return
        }
        if events.isEmpty {
            print("No events yet.")
            return
        }
        print(
            table(
                ["TIME", "TARGET", "EVENT", "VERSION", "CLASS", "REVISION", "DORA", "MESSAGE"],
                events.map {
                    [
                        iso($0.time), $0.target?.description ?? "-", $0.kind.rawValue,
                        versionColumn($0), $0.classification?.rawValue ?? "-", $0.revision?.short ?? "-",
                        record($0).map { $0.failed ? "failed" : "ok" } ?? "-", Self.message($0, record: record($0)),
                    ]
                }))
    }

    /// The MESSAGE column: the event's message, and why DORA counts its deployment failed when the message does
    /// not already say it (a deployment that went live and was later reverted, rolled back or hotfixed).
    static func message(_ event: Event, record: DeploymentRecord?) -> String {
        guard let record, record.failed else { return event.message }
        let reason = record.failureReason ?? "needed intervention"
        return event.message.contains(reason) ? event.message : "\(event.message); counted failed: \(reason)"
    }

    /// The deployment a finished-deployment event belongs to.
    static func deploymentID(_ event: Event) -> String? {
        guard event.kind == .deploymentSucceeded || event.kind == .deploymentFailed,
            case .object(let details)? = event.details, case .string(let id)? = details["deploymentId"]
        else { return nil }
        return id
    }

    private func versionColumn(_ event: Event) -> String {
        switch (event.previousVersion, event.version) {
        case (let previous?, let version?) where previous != version: "\(previous) → \(version)"
        case (_, let version?): version
        case (let previous?, nil): "\(previous) → -"
        default: "-"
        }
    }
}
