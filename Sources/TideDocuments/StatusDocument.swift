public import Foundation
public import TideEngine
public import TideManifest
public import TideState

/// What `tide status --json` prints (and the service answers): the applied revision, every live target with the
/// seeds' word for its state, and what is due, failing or held.
public struct StatusDocument: Encodable, Sendable {
    public var head: String?
    public var lastGoodRevision: String?
    public var lastGoodAt: Date?
    public var rejectedRevision: String?
    public var rejectedAt: Date?
    public var rejection: [Diagnostic]
    public var targets: [TargetStatus]
    /// Timed work that is due by itself: auto-promotions waiting for a bake.
    public var scheduledPromotions: [ScheduledPromotion]
    /// Every migration in every database, with its phase, owner and what Tide does next about it.
    public var migrations: [MigrationReportEntry]
    /// Executors whose circuit breaker is not closed, or that failed lately.
    public var executors: [ExecutorStatus]
    /// A remote config repo: its URL (no credentials), the last fetch and push and their errors.
    public var source: SourceStatus?
    /// The `tide run` holding the state (operator verbs hand it their requests), if one runs.
    public var service: ServiceRecord?
    /// `tide suspend`s in force.
    public var suspensions: [Suspension]
    /// Commits Tide wrote (`tide rollback` while the remote was down) that the remote has not taken yet.
    public var unpublished: [UnpublishedCommit]

    public init(
        head: String?, lastGoodRevision: String?, lastGoodAt: Date?, rejectedRevision: String?, rejectedAt: Date?,
        rejection: [Diagnostic], targets: [TargetStatus], scheduledPromotions: [ScheduledPromotion],
        migrations: [MigrationReportEntry], executors: [ExecutorStatus], source: SourceStatus?,
        service: ServiceRecord?, suspensions: [Suspension], unpublished: [UnpublishedCommit]
    ) {
        self.head = head
        self.lastGoodRevision = lastGoodRevision
        self.lastGoodAt = lastGoodAt
        self.rejectedRevision = rejectedRevision
        self.rejectedAt = rejectedAt
        self.rejection = rejection
        self.targets = targets
        self.scheduledPromotions = scheduledPromotions
        self.migrations = migrations
        self.executors = executors
        self.source = source
        self.service = service
        self.suspensions = suspensions
        self.unpublished = unpublished
    }

    public struct ExecutorStatus: Encodable, Sendable {
        public var executor: String
        /// closed, open or half-open.
        public var circuit: String
        public var consecutiveFailures: Int
        public var openUntil: Date?
        public var lastFailure: String?

        /// An executor's breaker and failures as of `now`.
        public init(_ health: ExecutorHealth, at now: Date) {
            executor = health.executor
            circuit = health.state(at: now).rawValue
            consecutiveFailures = health.consecutiveFailures
            openUntil = health.openUntil
            lastFailure = health.lastFailure
        }
    }

    public struct TargetStatus: Encodable, Sendable {
        public var service: String
        public var environment: String
        public var phase: String
        /// The seeds' word for it: deployed, in progress, waiting for …, blocked by …, failed, rolled back.
        public var state: String
        public var version: String?
        public var configDigest: String?
        public var revision: String?
        public var rollout: Rollout?
        public var failed: FailedAttempt?
        /// An aborted candidate still running (`abortScaleDownDelay`) until its scale-down.
        public var keptCandidate: KeptCandidate?
        public var waiting: String?
        /// Who suspended it and when (`tide suspend`), while Tide leaves it alone.
        public var suspended: String?
        public var updatedAt: Date

        /// A live target as status shows it: `state` is `word(for:lastDeployment:)` or "suspended".
        public init(_ target: LiveTarget, state: String, suspended: Suspension?) {
            service = target.id.service
            environment = target.id.environment
            phase = target.phase.rawValue
            self.state = state
            version = target.version
            configDigest = target.configDigest
            revision = target.revision?.hex
            rollout = target.rollout
            failed = target.failed
            keptCandidate = target.keptCandidate
            waiting = target.waiting
            self.suspended = suspended?.description
            updatedAt = target.updatedAt
        }
    }

    /// The deployment-state words of the seed playbooks.
    public static func word(for target: LiveTarget, lastDeployment: DeploymentRecord?) -> String {
        if target.phase == .rollingBack { return "rolling back" }
        if target.phase == .progressing {
            return target.waitingOn.first == .gate(.paused) ? "paused; a newer version waits" : "in progress"
        }
        if target.phase == .removing { return "removing" }
        // A newer version waiting at a gate is the news, whatever happened to the one before.
        // An error the last pass met is said in DETAIL; the word is the gate's or the phase's.
        if let reason = target.waitingOn.first(where: { !$0.isError }), reason != .refused || target.phase == .healthy {
            switch reason {
            case .gate(.approval): return "blocked by approval"
            case .gate(.freeze): return "blocked by freeze"
            case .gate(.policy): return "blocked by policy"
            case .gate(.window): return "waiting for a window"
            case .gate(.bake): return "waiting for bake"
            case .gate(.requires), .gate(.paused): return "waiting for upstream"
            case .refused: return "deployed; change refused"
            case .database: return "waiting for the database"
            case .error: break
            }
        }
        if target.phase == .failed { return "failed" }
        if target.phase == .rolledBack { return "rolled back" }
        if target.phase == .pending { return "waiting" }
        if lastDeployment?.classification == .rollback { return "rolled back" }
        return "deployed"
    }

    /// Live targets in the order a version travels: the desired state's (environments by `requires`, then
    /// services by `dependsOn` within each), then targets only the live state still has, in the store's order
    /// (environment, then service). Without a desired state to read, all in the store's order.
    public static func pipelineOrder(_ targets: [LiveTarget], desired: DesiredState?) -> [LiveTarget] {
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
    public static func detail(for target: LiveTarget, strategy: StrategySpec? = nil) -> String {
        let text = progress(of: target, strategy: strategy)
        guard let kept = target.keptCandidate else { return text }
        var words = "aborted candidate \(kept.version) still runs"
        words += kept.scaleDownAt.map { "; scale-down at \(Document.iso($0))" } ?? " until the next rollout"
        if let error = kept.lastError { words += " (scale-down attempt \(kept.attempts) failed: \(error))" }
        return text.isEmpty ? words : "\(text); \(words)"
    }

    private static func progress(of target: LiveTarget, strategy: StrategySpec?) -> String {
        if target.phase == .rollingBack, let rollout = target.rollout, let rolling = rollout.rollingBack {
            var text = "rolling back from \(rollout.version) to \(rollout.previousVersion ?? "-"): \(rolling.reason)"
            if let error = rolling.lastError {
                text += "; attempt \(rolling.attempts) failed: \(error)"
                if let due = rolling.nextAttemptAt {
                    text += "; next attempt at \(Document.iso(due)) (tide retry tries now)"
                }
            }
            return text
        }
        if let rollout = target.rollout {
            let step =
                rollout.plan == nil && strategy == nil
                ? "step \(rollout.step + 1)" : rollout.steps(declared: strategy).label(rollout.step)
            var parts = ["rolling out \(rollout.version), \(step), weight \(rollout.weight)%"]
            if rollout.paused { parts.append("paused") }
            if let due = rollout.nextDue { parts.append("next step due \(Document.iso(due))") }
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
            if let waiting = target.waiting, target.waitingOn.first == .gate(.paused) { parts.append(waiting) }
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
