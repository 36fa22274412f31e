import Foundation
import Synchronization
import TideEngine
import TideManifest
import TideMetrics
import TideState

/// The series `/metrics` reads from the state at scrape time, so they are true whichever process acted (the
/// service, a CLI verb, another reconcile) and survive restarts: per-target state, counters derived from the
/// append-only event log (deployments, rollbacks, approvals, rejected revisions, push failures — every series
/// present at 0 for every known target, so `increase()` sees the first one), circuit breakers, the rejected head,
/// the last successful pass and fetch, and the DORA figures.
final class StateMetrics: Sendable {
    /// Counts from the event log, followed incrementally (only events after the last one read are read).
    private struct Counts {
        var lastEventID: Int64 = 0
        var deployments: [DeploymentKey: Int] = [:]
        var rollbacks: [TargetID: Int] = [:]
        var approvals: [TargetID: Int] = [:]
        var rejectedRevisions = 0
        var pushFailures: [String: Int] = ["rejected": 0, "failed": 0]
        /// Every target an event named (removed ones keep their series).
        var targets: Set<TargetID> = []
    }

    struct DeploymentKey: Hashable {
        var target: TargetID
        var change: ChangeClass
        var result: String
    }

    static let counted: [Event.Kind] = [
        .deploymentSucceeded, .deploymentFailed, .deploymentRolledBack, .approvalGranted, .revisionRejected,
        .pushRejected, .pushFailed,
    ]
    /// The classes a deployment is counted under (REMOVAL is not a deployment of a version).
    static let classes: [ChangeClass] = [.feature, .config, .hotfix, .rollback, .migration]
    static let results = ["succeeded", "failed"]

    private let counts = Mutex(Counts())
    private let reading = AsyncLock()

    /// Reads the events written since the last scrape into the counts.
    private func follow(_ store: any StateStore) async {
        _ = try? await reading.run {
            while true {
                let last = counts.withLock { $0.lastEventID }
                let batch = try await store.events(after: last, kinds: Self.counted, limit: 10_000)
                counts.withLock { counts in
                    for event in batch { Self.count(event, into: &counts) }
                    counts.lastEventID = batch.last?.id ?? counts.lastEventID
                }
                if batch.count < 10_000 { return }
            }
        }
    }

    private static func count(_ event: Event, into counts: inout Counts) {
        if let target = event.target { counts.targets.insert(target) }
        switch event.kind {
        case .deploymentSucceeded, .deploymentFailed:
            guard let target = event.target else { return }
            let change = event.classification ?? .feature
            let key = DeploymentKey(
                target: target, change: classes.contains(change) ? change : .feature,
                result: event.kind == .deploymentSucceeded ? "succeeded" : "failed")
            counts.deployments[key, default: 0] += 1
        case .deploymentRolledBack:
            if let target = event.target { counts.rollbacks[target, default: 0] += 1 }
        case .approvalGranted:
            if let target = event.target { counts.approvals[target, default: 0] += 1 }
        case .revisionRejected:
            counts.rejectedRevisions += 1
        case .pushRejected:
            counts.pushFailures["rejected", default: 0] += 1
        case .pushFailed:
            counts.pushFailures["failed", default: 0] += 1
        default:
            break
        }
    }

    /// Everything read from the state, as exposition text.
    func render(store: any StateStore, health: DaemonHealth, desired: DesiredState?, now: Date) async -> String {
        await follow(store)
        var out = Exposition()
        let live = (try? await store.liveTargets()) ?? []
        let suspensions = (try? await store.suspensions()) ?? []
        let snapshot = counts.withLock { $0 }
        var known = snapshot.targets.union(live.map(\.id)).union(health.targets)
        known.formUnion(desired?.targets.map(\.id) ?? [])
        let targets = known.sorted()

        out.family("tide_deployments_total", "counter", "Deployments that finished, by target, class and result.")
        for target in targets {
            for change in Self.classes {
                for result in Self.results {
                    out.sample(
                        "tide_deployments_total",
                        Self.labels(target) + [("class", change.rawValue), ("result", result)],
                        Double(snapshot.deployments[DeploymentKey(target: target, change: change, result: result)] ?? 0)
                    )
                }
            }
        }
        out.family("tide_rollbacks_total", "counter", "Automatic rollbacks and aborts that brought stable back.")
        for target in targets {
            out.sample("tide_rollbacks_total", Self.labels(target), Double(snapshot.rollbacks[target] ?? 0))
        }
        out.family("tide_approvals_total", "counter", "Approvals recorded (tide approve).")
        for target in targets {
            out.sample("tide_approvals_total", Self.labels(target), Double(snapshot.approvals[target] ?? 0))
        }
        out.family("tide_revisions_rejected_total", "counter", "Branch heads rejected (invalid, unsigned, unreadable).")
        out.sample("tide_revisions_rejected_total", [], Double(snapshot.rejectedRevisions))
        out.family("tide_push_failures_total", "counter", "Pushes of commits Tide wrote that the remote did not take.")
        for (reason, count) in snapshot.pushFailures.sorted(by: { $0.key < $1.key }) {
            out.sample("tide_push_failures_total", [("reason", reason)], Double(count))
        }

        var byCondition: [TargetCondition: Int] = [:]
        out.family(
            "tide_target_state", "gauge",
            "Each target's condition (deployed, progressing, paused, stuck, waiting, held, failed, rolled_back, "
                + "suspended, pending, removing): one series per target, value 1.")
        for target in live.sorted(by: { $0.id < $1.id }) {
            let condition = TargetCondition.of(target, desired: desired, suspensions: suspensions, now: now)
            byCondition[condition, default: 0] += 1
            out.sample("tide_target_state", Self.labels(target.id) + [("state", condition.rawValue)], 1)
        }
        out.family("tide_targets", "gauge", "Targets in each condition.")
        for condition in TargetCondition.allCases {
            out.sample("tide_targets", [("state", condition.rawValue)], Double(byCondition[condition] ?? 0))
        }
        out.family("tide_target_info", "gauge", "What runs where: one series per target, value 1.")
        for target in live.sorted(by: { $0.id < $1.id }) {
            out.sample(
                "tide_target_info",
                Self.labels(target.id) + [("phase", target.phase.rawValue), ("version", target.version ?? "")], 1)
        }

        let breakers = (try? await store.executorHealth()) ?? []
        out.family("tide_executor_circuit_open", "gauge", "Whether an executor's circuit breaker is open (1) or not.")
        for executor in Set(breakers.map(\.executor)).union(desired?.executors.keys.map { $0 } ?? []).sorted() {
            let state = breakers.first { $0.executor == executor }?.state(at: now)
            out.sample("tide_executor_circuit_open", [("executor", executor)], state == .open ? 1 : 0)
        }

        let status = try? await store.repositoryStatus()
        let rejectedHead =
            status.map { $0.rejectedRevision != nil && $0.rejectedRevision == health.head } ?? false
        out.family("tide_head_rejected", "gauge", "Whether the branch head is rejected (1): the last good one applies.")
        out.sample("tide_head_rejected", [], rejectedHead ? 1 : 0)
        if let revision = status?.lastGoodRevision {
            out.family("tide_applied_revision_info", "gauge", "The revision applied (the last good one), value 1.")
            out.sample("tide_applied_revision_info", [("revision", revision.hex)], 1)
            if let at = status?.lastGoodAt {
                out.family(
                    "tide_applied_revision_timestamp_seconds", "gauge", "When the applied revision was accepted.")
                out.sample("tide_applied_revision_timestamp_seconds", [], at.timeIntervalSince1970)
            }
        }
        if let at = health.lastSuccessfulPassAt {
            out.family(
                "tide_last_successful_pass_timestamp_seconds", "gauge",
                "When a reconcile pass last ran to its end (any result but error).")
            out.sample("tide_last_successful_pass_timestamp_seconds", [], at.timeIntervalSince1970)
        }
        if let source = try? await store.sourceStatus() {
            out.family(
                "tide_fetch_failing", "gauge", "Whether the last fetch of the config repo failed (1) or not (0).")
            out.sample("tide_fetch_failing", [], source.lastFetchError == nil ? 0 : 1)
            // From the state, so they survive a restart and agree with tide status.
            for (name, help, date) in [
                (
                    "tide_fetch_last_success_timestamp_seconds", "When the config repo was last fetched successfully.",
                    source.lastFetchSuccessAt
                ),
                (
                    "tide_fetch_last_attempt_timestamp_seconds", "When a fetch of the config repo was last tried.",
                    source.lastFetchAt
                ),
            ] {
                guard let date else { continue }
                out.family(name, "gauge", help)
                out.sample(name, [], date.timeIntervalSince1970)
            }
        }
        var text = out.text
        let filter = DeploymentFilter(from: now.addingTimeInterval(-30 * 86400), to: now)
        if let report = try? await DoraCalculator(store: store).report(filter) {
            text += PrometheusExposition.render(report, environment: nil, service: nil)
        }
        return text
    }

    static func labels(_ target: TargetID) -> [(String, String)] {
        [("service", target.service), ("environment", target.environment)]
    }
}

/// Prometheus text, a family at a time.
struct Exposition {
    private(set) var text = ""

    mutating func family(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        let rendered =
            labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        let number = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        text += "\(name)\(rendered) \(number)\n"
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
