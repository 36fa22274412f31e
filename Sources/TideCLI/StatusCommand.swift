import ArgumentParser
import Foundation
import TideDocuments
import TideEngine
import TideGit
import TideManifest
import TideState

/// `tide status`: live state of every target and which revision is applied.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show each target's phase and version, and the applied revision.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Print the status as JSON.")
    var json = false

    static func printSource(_ source: SourceStatus) {
        print("Source:         \(source.url)\(source.branch.map { " (\($0))" } ?? "")")
        print(
            "Last fetch:     \(iso(source.lastFetchAt))"
                + (source.lastFetchError.map { " FAILED: \($0)" } ?? " ok")
                + (source.lastFetchError != nil ? "; last success \(iso(source.lastFetchSuccessAt))" : ""))
        if let error = source.lastPushError {
            print("Last push:      \(iso(source.lastPushAt)) FAILED: \(error)")
        }
    }

    func run() async throws {
        let repository = try global.openRepository()
        let store = try global.openStore(for: repository)
        let status = try await store.repositoryStatus()
        let tracked = try? global.reconciler().trackedBranch()
        let head = tracked.flatMap { try? repository.resolveCommit(branch: $0) }
        // The applied revision's desired state is what the live targets came from; the head's, if none applies.
        let desired = [status.lastGoodRevision, head].lazy.compactMap { revision in
            revision.flatMap {
                try? ManifestLoader().load(
                    from: GitCommitSource(repository: repository, commit: $0, root: global.manifestRoot))
            }
        }.first
        let targets = StatusDocument.pipelineOrder(try await store.liveTargets(), desired: desired)
        var scheduled: [ScheduledPromotion] = []
        var migrations: [MigrationReportEntry] = []
        if let desired {
            let reconciler = try global.reconciler()
            scheduled = try await reconciler.promoter.scheduledPromotions(desired: desired)
            migrations = (try? await reconciler.migrations.migrationReport()) ?? []
        }
        var words: [TargetID: String] = [:]
        let suspensions = try await store.suspensions()
        let suspended = { (id: TargetID) in suspensions.first { $0.covers(id) } }
        for target in targets {
            let last = try await store.deployments(DeploymentQuery(target: target.id, limit: 1)).first
            words[target.id] =
                suspended(target.id) == nil ? StatusDocument.word(for: target, lastDeployment: last) : "suspended"
        }
        let output = StatusDocument(
            head: head?.hex, lastGoodRevision: status.lastGoodRevision?.hex, lastGoodAt: status.lastGoodAt,
            rejectedRevision: status.rejectedRevision?.hex, rejectedAt: status.rejectedAt,
            rejection: status.rejection,
            targets: targets.map {
                StatusDocument.TargetStatus($0, state: words[$0.id] ?? "", suspended: suspended($0.id))
            }, scheduledPromotions: scheduled, migrations: migrations,
            executors: try await store.executorHealth().filter { $0.consecutiveFailures > 0 || $0.openUntil != nil }
                .map { StatusDocument.ExecutorStatus($0, at: Date()) }, source: try await store.sourceStatus(),
            service: try await store.services().first(where: \.isAlive), suspensions: suspensions,
            unpublished: status.unpublished ?? [])
        if json {
            try printJSON(output)
            return
        }
        if let service = output.service {
            print("Service:        \(service.description), since \(iso(service.startedAt))")
        }
        if let source = output.source { Self.printSource(source) }
        for entry in output.unpublished {
            print(
                "Unpublished:    \(entry.commit.short) (\(entry.what) of \(entry.target) to \(entry.stableVersion) by "
                    + "\(entry.actor), \(iso(entry.at))): not pushed yet — \(entry.why); pushed when the remote answers"
            )
        }
        print("Branch head:    \(head?.short ?? (tracked == nil ? "- (HEAD is detached: pass --branch)" : "-"))")
        print(
            "Applied:        \(status.lastGoodRevision?.short ?? "nothing yet")"
                + (status.lastGoodAt.map { " (accepted \(iso($0)))" } ?? ""))
        if let rejected = status.rejectedRevision {
            print(
                "Rejected:       \(rejected.short) at \(iso(status.rejectedAt)), \(status.rejection.count) problem(s):")
            for diagnostic in status.rejection { print("  \(diagnostic)") }
        }
        if targets.isEmpty {
            print("No targets deployed yet.")
            return
        }
        print("")
        print(
            table(
                ["TARGET", "PHASE", "STATE", "VERSION", "REVISION", "UPDATED", "DETAIL"],
                targets.map { target in
                    [
                        target.id.description, target.phase.rawValue, words[target.id] ?? "", target.version ?? "-",
                        target.revision?.short ?? "-", iso(target.updatedAt),
                        suspended(target.id)?.description
                            ?? StatusDocument.detail(
                                for: target, strategy: desired?.services[target.id.service]?.strategy),
                    ]
                }))
        if let desired {
            for pin in try global.reconciler().branchWriter.rollbackPins(desired: desired) {
                print("Pinned:    \(pin.description)")
            }
        }
        for entry in migrations where entry.next != "in use" {
            print(
                "Migration: \(entry.migration) (\(entry.executor), \(entry.environments.joined(separator: ","))) "
                    + "\(entry.phase): \(entry.next)")
        }
        for executor in output.executors where executor.circuit != "closed" {
            print(
                "Executor:  \(executor.executor): circuit \(executor.circuit)"
                    + (executor.circuit == "open" ? " until \(iso(executor.openUntil))" : ", one trial action next")
                    + " (\(ExecutorHealth.inARow(executor.consecutiveFailures)); last: \(executor.lastFailure ?? "-"))")
        }
        for promotion in scheduled {
            print(
                "Due: \(promotion.service)@\(promotion.environment): promote \(promotion.version) from "
                    + "\(promotion.from.joined(separator: ", ")) at \(iso(promotion.due)) (after the bake)")
        }
    }
}
