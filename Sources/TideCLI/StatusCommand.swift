import ArgumentParser
import Foundation
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

    struct Output: Encodable {
        var head: String?
        var lastGoodRevision: String?
        var lastGoodAt: Date?
        var rejectedRevision: String?
        var rejectedAt: Date?
        var rejection: [Diagnostic]
        var targets: [TargetStatus]
        /// Timed work that is due by itself: auto-promotions waiting for a bake.
        var scheduledPromotions: [ScheduledPromotion]
        /// Every migration in every database, with its phase, owner and what Tide does next about it.
        var migrations: [MigrationReportEntry]
        /// Executors whose circuit breaker is not closed, or that failed lately.
        var executors: [ExecutorStatus]
        /// A remote config repo: its URL (no credentials), the last fetch and push and their errors.
        var source: SourceStatus?
        /// The `tide run` holding the state (operator verbs hand it their requests), if one runs.
        var service: ServiceRecord?
        /// `tide suspend`s in force.
        var suspensions: [Suspension]
        /// Commits Tide wrote (`tide rollback` while the remote was down) that the remote has not taken yet.
        var unpublished: [UnpublishedCommit]
    }

    struct ExecutorStatus: Encodable {
        var executor: String
        /// closed, open or half-open.
        var circuit: String
        var consecutiveFailures: Int
        var openUntil: Date?
        var lastFailure: String?
    }

    struct TargetStatus: Encodable {
        var service: String
        var environment: String
        var phase: String
        /// The seeds' word for it: deployed, in progress, waiting for …, blocked by …, failed, rolled back.
        var state: String
        var version: String?
        var configDigest: String?
        var revision: String?
        var rollout: Rollout?
        var failed: FailedAttempt?
        /// An aborted candidate still running (`abortScaleDownDelay`) until its scale-down.
        var keptCandidate: KeptCandidate?
        var waiting: String?
        /// Who suspended it and when (`tide suspend`), while Tide leaves it alone.
        var suspended: String?
        var updatedAt: Date
    }

    /// The deployment-state words of the seed playbooks.
    static func word(for target: LiveTarget, lastDeployment: DeploymentRecord?) -> String {
        if target.phase == .rollingBack { return "rolling back" }
        if target.phase == .progressing {
            return target.waitingOn.first == "paused" ? "paused; a newer version waits" : "in progress"
        }
        if target.phase == .removing { return "removing" }
        // A newer version waiting at a gate is the news, whatever happened to the one before.
        if let kind = target.waitingOn.first, kind != "refused" || target.phase == .healthy {
            switch kind {
            case "approval": return "blocked by approval"
            case "freeze": return "blocked by freeze"
            case "policy": return "blocked by policy"
            case "window": return "waiting for a window"
            case "bake": return "waiting for bake"
            case "refused": return "deployed; change refused"
            case "database": return "waiting for the database"
            default: return "waiting for upstream"
            }
        }
        if target.phase == .failed { return "failed" }
        if target.phase == .rolledBack { return "rolled back" }
        if target.phase == .pending { return "waiting" }
        if lastDeployment?.classification == .rollback { return "rolled back" }
        return "deployed"
    }

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
        let targets = Self.pipelineOrder(try await store.liveTargets(), desired: desired)
        var scheduled: [ScheduledPromotion] = []
        var migrations: [MigrationReportEntry] = []
        if let desired {
            let reconciler = try global.reconciler()
            scheduled = try await reconciler.scheduledPromotions(desired: desired)
            migrations = (try? await reconciler.migrationReport()) ?? []
        }
        var words: [TargetID: String] = [:]
        let suspensions = try await store.suspensions()
        let suspended = { (id: TargetID) in suspensions.first { $0.covers(id) } }
        for target in targets {
            let last = try await store.deployments(DeploymentQuery(target: target.id, limit: 1)).first
            words[target.id] = suspended(target.id) == nil ? Self.word(for: target, lastDeployment: last) : "suspended"
        }
        let output = Output(
            head: head?.hex, lastGoodRevision: status.lastGoodRevision?.hex, lastGoodAt: status.lastGoodAt,
            rejectedRevision: status.rejectedRevision?.hex, rejectedAt: status.rejectedAt,
            rejection: status.rejection,
            targets: targets.map {
                TargetStatus(
                    service: $0.id.service, environment: $0.id.environment, phase: $0.phase.rawValue,
                    state: words[$0.id] ?? "", version: $0.version, configDigest: $0.configDigest,
                    revision: $0.revision?.hex,
                    rollout: $0.rollout, failed: $0.failed, keptCandidate: $0.keptCandidate, waiting: $0.waiting,
                    suspended: suspended($0.id)?.description, updatedAt: $0.updatedAt)
            }, scheduledPromotions: scheduled, migrations: migrations,
            executors: try await store.executorHealth().filter { $0.consecutiveFailures > 0 || $0.openUntil != nil }.map
            {
                ExecutorStatus(
                    executor: $0.executor, circuit: $0.state(at: Date()).rawValue,
                    consecutiveFailures: $0.consecutiveFailures, openUntil: $0.openUntil, lastFailure: $0.lastFailure)
            }, source: try await store.sourceStatus(),
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
                            ?? Self.detail(for: target, strategy: desired?.services[target.id.service]?.strategy),
                    ]
                }))
        if let desired {
            for pin in try global.reconciler().rollbackPins(desired: desired) { print("Pinned:    \(pin.description)") }
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

    /// Live targets in the order a version travels: the desired state's (environments by `requires`, then
    /// services by `dependsOn` within each), then targets only the live state still has, in the store's order
    /// (environment, then service). Without a desired state to read, all in the store's order.
    static func pipelineOrder(_ targets: [LiveTarget], desired: DesiredState?) -> [LiveTarget] {
        let rank = Dictionary(
            (desired?.targets ?? []).enumerated().map { ($0.element.id, $0.offset) }, uniquingKeysWith: { a, _ in a })
        return targets.enumerated().sorted { left, right in
            switch (rank[left.element.id], rank[right.element.id]) {
            case (let l?, let r?): l < r
            case (.some, nil): true
            case (nil, .some): false
            case (nil, nil): left.offset < right.offset
            }
        }.map(\.element)
    }

    /// The DETAIL column: how far a rollout got (step, weight, paused) and what its analyses measured, or why
    /// a target failed or waits.
    /// `strategy`: the service's strategy in desired state, to name the step as the manifest does.
    static func detail(for target: LiveTarget, strategy: StrategySpec? = nil) -> String {
        let text = progress(of: target, strategy: strategy)
        guard let kept = target.keptCandidate else { return text }
        var words = "aborted candidate \(kept.version) still runs"
        words += kept.scaleDownAt.map { "; scale-down at \(iso($0))" } ?? " until the next rollout"
        if let error = kept.lastError { words += " (scale-down attempt \(kept.attempts) failed: \(error))" }
        return text.isEmpty ? words : "\(text); \(words)"
    }

    private static func progress(of target: LiveTarget, strategy: StrategySpec?) -> String {
        if target.phase == .rollingBack, let rollout = target.rollout, let rolling = rollout.rollingBack {
            var text = "rolling back from \(rollout.version) to \(rollout.previousVersion ?? "-"): \(rolling.reason)"
            if let error = rolling.lastError {
                text += "; attempt \(rolling.attempts) failed: \(error)"
                if let due = rolling.nextAttemptAt { text += "; next attempt at \(iso(due)) (tide retry tries now)" }
            }
            return text
        }
        if let rollout = target.rollout {
            let step =
                rollout.plan == nil && strategy == nil
                ? "step \(rollout.step + 1)" : rollout.steps(declared: strategy).label(rollout.step)
            var parts = ["rolling out \(rollout.version), \(step), weight \(rollout.weight)%"]
            if rollout.paused { parts.append("paused") }
            if let due = rollout.nextDue { parts.append("next step due \(iso(due))") }
            for (label, run) in [("analysis", rollout.analysis), ("background", rollout.background)] {
                guard let run else { continue }
                var text = "\(label) \(run.name): \(run.rounds) round(s)"
                let counts = [AnalysisRun.Measurement.Phase.success, .failure, .inconclusive, .error].compactMap {
                    phase -> String? in
                    let n = run.measurements.filter { $0.phase == phase }.count
                    return n == 0 ? nil : "\(n) \(phase.rawValue)"
                }
                if !counts.isEmpty { text += " (" + counts.joined(separator: ", ") + ")" }
                if case .object(let report)? = run.judgement, case .string(let verdict)? = report["verdict"] {
                    let score = report["score"].flatMap(Condition.number).map { String(format: "%.0f", $0) } ?? "-"
                    text += ", judge: score \(score), \(verdict)"
                } else if let last = run.measurements.last {
                    text += ", last \(last.metric) = \(last.value?.canonicalJSON ?? "-") \(last.phase.rawValue)"
                }
                parts.append(text)
            }
            if let waiting = target.waiting, target.waitingOn.first == "paused" { parts.append(waiting) }
            return parts.joined(separator: "; ")
        }
        if let waiting = target.waiting {
            // Gate reasons that already say so ("waiting for approval: …") and refusals are not prefixed again.
            let text = waiting.hasPrefix("waiting") || waiting.hasPrefix("refused") ? waiting : "waiting: \(waiting)"
            if let failed = target.failed, target.phase == .failed || target.phase == .rolledBack {
                return "\(text); before that \(failed.version) failed: \(failed.message)"
            }
            return text
        }
        if let failed = target.failed, target.phase == .failed || target.phase == .rolledBack {
            return "failed \(failed.version): \(failed.message)"
        }
        return ""
    }
}
