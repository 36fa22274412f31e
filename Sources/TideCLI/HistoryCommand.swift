import ArgumentParser
import Foundation
import TideDocuments
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

    func run() async throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
        let repository = try? global.openRepository()
        let store = try global.openStore(for: repository)
        let events = try await store.events(
            EventQuery(
                service: service, environment: environment, kinds: all ? nil : HistoryEntry.summaryKinds, limit: limit))
        let ids = events.compactMap(HistoryEntry.deploymentID)
        let records = ids.isEmpty ? [] : try await store.deployments(DeploymentQuery(ids: ids, limit: ids.count))
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        func record(_ event: Event) -> DeploymentRecord? { HistoryEntry.deploymentID(event).flatMap { byID[$0] } }
        if json {
            try printJSON(events.map { HistoryEntry($0, deployment: record($0)) })
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
                        record($0).map { $0.failed ? "failed" : "ok" } ?? "-",
                        HistoryEntry.message($0, record: record($0)),
                    ]
                }))
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
