public import Foundation
import TideGit
public import TideManifest
public import TideState

/// Something that keeps a version from starting in an environment now.
public struct Gate: Sendable, Hashable, Codable {
    public typealias Kind = GateKind

    public var kind: Kind
    public var reason: String
    /// When the gate opens by itself (bake done, window opens, freeze ends); nil when it needs a person or another
    /// environment to move.
    public var until: Date?

    public init(kind: Kind, reason: String, until: Date? = nil) {
        self.kind = kind
        self.reason = reason
        self.until = until
    }
}

/// Decides which gates hold a deployment. Rollbacks pass every gate: getting back to a known-good version is
/// never held by a window, a freeze or an approval. A HOTFIX skips `bake`, nothing else.
public struct GateEvaluator: Sendable {
    public let desired: DesiredState
    public let store: any StateStore
    public let now: Date
    /// Live state read once for a whole plan; nil: ask the store each time (at execution, where a target
    /// deployed earlier in the same pass must count).
    public let live: [TargetID: LiveTarget]?

    public init(desired: DesiredState, store: any StateStore, now: Date, live: [TargetID: LiveTarget]? = nil) {
        self.live = live
        self.desired = desired
        self.store = store
        self.now = now
    }

    /// The gates that hold `wanted` (what the target would run: its version, config and executor) now.
    ///
    /// What must never happen: a change of any class — a new version, a config or executor change, a revert to
    /// something that never ran here — reaching an environment past a gate its manifests set; an environment
    /// running a version, base config or executor its `requires` environment never ran healthy (for the `bake`);
    /// an approval given for another version, config or executor satisfying this change. Rollbacks (to what ran
    /// healthy on this very target) pass every gate but the Policy rules that name ROLLBACK.
    public func gates(for wanted: DesiredTarget, classification: ChangeClass) async throws -> [Gate] {
        let target = wanted.id
        let version = wanted.version
        guard let environment = desired.environments[target.environment] else { return [] }
        let risk = risk(of: classification, for: target)
        let rules = desired.policies.flatMap { policy in
            policy.rules.filter {
                Self.matches($0, target: target, environment: environment, change: classification, risk: risk)
            }
            .map { (policy.name, $0) }
        }
        var gates: [Gate] = []
        let current = try await liveTarget(target)
        if let rollout = current?.rollout, current?.phase == .progressing, let who = rollout.heldBy {
            // Any change holds, not only a newer version: a config-only commit or a strategy edit would pre-empt
            // the paused rollout just the same. (Going on with the paused rollout itself is a resume, which the
            // planner decides before any gate.)
            // As in Argo Rollouts, a paused rollout holds: a newer commit waits instead of pre-empting it.
            gates.append(
                Gate(
                    kind: .paused,
                    reason: "\(target)'s rollout of \(rollout.version) is paused (by \(who)); \(version) waits: "
                        + "tide resume \(target.service) --env \(target.environment)"))
            if classification != .rollback { return gates }
        }
        if classification == .rollback {
            // Rollbacks pass every gate but the policy rules written for rollbacks.
            let explicit = rules.filter { $0.1.classes.contains(.rollback) }
            return try await policyGates(explicit, wanted: wanted, approvalNeeded: false)
        }
        for required in environment.requires
        where desired.services[target.service]?.environments[required] != nil {
            if let gate = try await upstreamGate(required, wanted: wanted, classification: classification) {
                gates.append(gate)
            }
        }
        gates += try await policyGates(rules, wanted: wanted, approvalNeeded: environment.approval == .manual)
        if let freeze = environment.freezes.first(where: { $0.from <= now && now < $0.until }) {
            gates.append(
                Gate(
                    kind: .freeze,
                    reason: "frozen until \(Self.format(freeze.until))" + (freeze.reason.map { ": \($0)" } ?? ""),
                    until: freeze.until))
        }
        if let closed = windowGate(environment.windows, "the deployment windows of \(target.environment)") {
            gates.append(closed)
        }
        return gates
    }

    /// The target as the snapshot given, or else the store, has it.
    private func liveTarget(_ id: TargetID) async throws -> LiveTarget? {
        if let snapshot = live { return snapshot[id] }
        return try await store.liveTarget(id)
    }

    /// What the `required` environment's run of the service holds back, if anything: the same version, base
    /// config and executor must run healthy there, for the environment's `bake` (a hotfix does not bake).
    private func upstreamGate(
        _ required: String, wanted: DesiredTarget, classification: ChangeClass
    ) async throws -> Gate? {
        let target = wanted.id
        let version = wanted.version
        let upstream = TargetID(service: target.service, environment: required)
        let live = try await liveTarget(upstream)
        guard let live, live.version == version, live.phase == .healthy else {
            let state = live.map { "\($0.version ?? "nothing") (\($0.phase.rawValue))" } ?? "nothing"
            return Gate(kind: .requires, reason: "\(upstream) must run \(version) healthy first; it runs \(state)")
        }
        // The same version is not enough: the config the service carries (spec.config) and its executor must be
        // what ran there too, so a config-only or script-only change walks every environment as well.
        guard let release = live.release, release.baseConfigDigest == wanted.baseConfigDigest,
            release.executorDigest == wanted.executorDigest
        else {
            return Gate(
                kind: .requires,
                reason: "\(upstream) must run \(version) healthy first with this change's "
                    + Self.differences(live.release, wanted) + "; it runs \(version) with "
                    + Self.describe(live.release))
        }
        guard let environment = desired.environments[target.environment], environment.bake > 0,
            classification != .hotfix
        else { return nil }
        let baked = release.deployedAt.addingTimeInterval(environment.bake)
        guard now < baked else { return nil }
        return Gate(
            kind: .bake,
            reason: "\(version) bakes in \(required) for \(ManifestDuration.format(environment.bake)), "
                + "until \(Self.format(baked))", until: baked)
    }

    /// The risk of a change to a target (see `RiskLevel.of`).
    public func risk(of change: ChangeClass, for target: TargetID) -> RiskLevel {
        RiskLevel.of(
            change, production: desired.environments[target.environment]?.production ?? false,
            strategy: desired.services[target.service]?.strategy.type ?? .recreate)
    }

    static func matches(
        _ rule: PolicyManifest.Rule, target: TargetID, environment: EnvironmentManifest, change: ChangeClass,
        risk: RiskLevel
    ) -> Bool {
        (rule.environments.isEmpty || rule.environments.contains(target.environment))
            && (rule.classes.isEmpty || rule.classes.contains(change))
            && (rule.risks.isEmpty || rule.risks.contains(risk))
            && (rule.production == nil || rule.production == environment.production)
    }

    /// `config 3f2a1b0c and executor 9e8d7c6b` — the parts of `wanted` a release differs in.
    static func differences(_ release: Release?, _ wanted: DesiredTarget) -> String {
        guard let release else {
            return "config \(wanted.baseConfigDigest.prefix(8)) and executor \(wanted.executorDigest.prefix(8))"
        }
        var parts: [String] = []
        if release.baseConfigDigest != wanted.baseConfigDigest {
            parts.append("config \(wanted.baseConfigDigest.prefix(8))")
        }
        if release.executorDigest != wanted.executorDigest {
            parts.append("executor \(wanted.executorDigest.prefix(8))")
        }
        return parts.joined(separator: " and ")
    }

    /// `config 9e8d7c6b, executor 1a2b3c4d`, or that it is not recorded.
    static func describe(_ release: Release?) -> String {
        guard let release else { return "a config and executor not recorded yet" }
        return "config \(release.baseConfigDigest.prefix(8)), executor \(release.executorDigest.prefix(8))"
    }

    /// Whether `approval` (an `approval.granted` event) is for exactly what `wanted` would run: its version, its
    /// config digest and its executor. An approval recorded before approvals named their config is for no config.
    public static func approves(_ approval: Event, _ wanted: DesiredTarget) -> Bool {
        guard approval.version == wanted.version, case .object(let details)? = approval.details,
            case .string(let config)? = details["configDigest"], config == wanted.configDigest,
            case .string(let executor)? = details["executorDigest"], executor == wanted.executorDigest
        else { return false }
        return true
    }

    /// Approval (from the environment or a policy), a policy's minimum strategy and its windows.
    private func policyGates(
        _ rules: [(String, PolicyManifest.Rule)], wanted: DesiredTarget, approvalNeeded: Bool
    ) async throws -> [Gate] {
        let target = wanted.id
        let version = wanted.version
        var gates: [Gate] = []
        let approvers = rules.filter { $0.1.requireApproval }.map(\.0)
        if approvalNeeded || !approvers.isEmpty {
            let approvals = try await store.events(
                EventQuery(
                    service: target.service, environment: target.environment, kinds: [.approvalGranted],
                    limit: 200))
            if !approvals.contains(where: { Self.approves($0, wanted) }) {
                let why = approvers.isEmpty ? "" : " (policy \(approvers.joined(separator: ", ")))"
                // An approval of this version for another config (or executor) is not one for this change.
                let other = approvals.first { $0.version == version }.map { approval in
                    "; the approval of \(version) by \(Self.approver(approval)) was for another config or executor, "
                        + "this change runs config \(wanted.configDigest.prefix(8))"
                }
                gates.append(
                    Gate(
                        kind: .approval,
                        reason: "waiting for approval: tide approve \(target.service) --env \(target.environment) "
                            + "--version \(version)\(why)\(other ?? "")"))
            }
        }
        let strategy = desired.services[target.service]?.strategy.type ?? .recreate
        for (name, rule) in rules {
            if let minimum = rule.minimumStrategy, strategy.rank < minimum.rank {
                gates.append(
                    Gate(
                        kind: .policy,
                        reason: "policy \(name) requires at least a \(minimum.rawValue) strategy here; "
                            + "\(target.service) uses \(strategy.rawValue)"))
            }
            if rule.requireAnalysis && !Self.hasAnalysis(desired.services[target.service]?.strategy) {
                gates.append(
                    Gate(
                        kind: .policy,
                        reason: "policy \(name) requires an analysis step here; \(target.service)'s strategy has none"))
            }
            if let closed = windowGate(rule.windows, "the windows of policy \(name)") { gates.append(closed) }
        }
        return gates
    }

    /// Who an approval event names.
    static func approver(_ event: Event) -> String {
        if case .object(let details)? = event.details, case .string(let who)? = details["by"] { return who }
        return "someone"
    }

    /// Whether a strategy has an analysis step.
    public static func hasAnalysis(_ strategy: StrategySpec?) -> Bool {
        !(strategy?.analyses.isEmpty ?? true)
    }

    /// A window gate when `windows` exist and none is open now, saying when the next one opens.
    private func windowGate(_ windows: [EnvironmentManifest.Window], _ described: String) -> Gate? {
        guard !windows.isEmpty, !windows.contains(where: { Self.contains($0, now) }) else { return nil }
        let next = windows.compactMap { Self.nextOpening($0, after: now) }.min()
        return Gate(
            kind: .window,
            reason: "outside \(described)" + (next.map { "; the next opens at \(Self.format($0))" } ?? ""),
            until: next)
    }

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    static func calendar(_ zone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar
    }

    /// Whether `date` falls in the window, reading the clock and weekday in the window's time zone.
    public static func contains(_ window: EnvironmentManifest.Window, _ date: Date) -> Bool {
        let calendar = calendar(window.timeZone)
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekday = parts.weekday, let hour = parts.hour, let minute = parts.minute else { return false }
        let now = hour * 60 + minute
        if window.start < window.end {
            return window.weekdays.contains(weekday) && window.start <= now && now < window.end
        }
        // Past midnight: the evening part belongs to the listed day, the morning part to the day after it.
        let yesterday = weekday == 1 ? 7 : weekday - 1
        return (window.weekdays.contains(weekday) && now >= window.start)
            || (window.weekdays.contains(yesterday) && now < window.end)
    }

    /// The next moment after `date` at which the window opens.
    public static func nextOpening(_ window: EnvironmentManifest.Window, after date: Date) -> Date? {
        let calendar = calendar(window.timeZone)
        let today = calendar.startOfDay(for: date)
        for offset in 0...8 {
            guard let day = calendar.date(byAdding: .day, value: offset, to: today) else { continue }
            guard window.weekdays.contains(calendar.component(.weekday, from: day)) else { continue }
            // Adding hours and minutes to the day's start in the zone keeps wall-clock time across DST changes.
            guard
                let opening = calendar.date(
                    bySettingHour: window.start / 60, minute: window.start % 60, second: 0, of: day)
            else { continue }
            if opening > date { return opening }
        }
        return nil
    }
}
