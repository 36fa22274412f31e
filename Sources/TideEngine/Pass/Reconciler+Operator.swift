import Foundation
import TideGit
public import TideManifest
public import TideState

/// What an operator verb did, as the CLI prints it: lines for stdout and stderr, and the exit status.
public struct OperatorOutcome: Sendable, Hashable {
    /// After the verb, a pass runs and its outcome for this target is added (`tide promote`, `resume`, `retry`;
    /// `tide rollback --reconcile`).
    public enum FollowUp: Sendable, Hashable {
        case none
        /// The target's outcome; a failure of it fails the verb.
        case target(TargetID, verb: String)
        /// Every deployment the pass made (`rollback --reconcile`); any failure fails the verb.
        case deployments
    }

    public var output: [String] = []
    public var errors: [String] = []
    public var status: Int32 = 0
    public var followUp: FollowUp = .none

    public init() {}

    /// A verb refused or failed: `tide: error: WHY` on stderr, exit status 1.
    public static func failure(_ why: String) -> OperatorOutcome {
        var outcome = OperatorOutcome()
        outcome.errors = ["tide: error: \(why)"]
        outcome.status = 1
        return outcome
    }

    /// Adds what the pass that followed the verb did.
    /// The passes that ran after the verb, in order (one may have been running when it was carried out): for a
    /// target, those that did something to it (the last pass alone when none did).
    public mutating func add(_ reports: [ReconcileReport]) {
        guard case .target(let id, _) = followUp else {
            for report in reports { add(report) }
            return
        }
        let acted = reports.filter { report in
            report.outcomes.contains { $0.target == id && $0.result != .unchanged }
        }
        for report in acted.isEmpty ? Array(reports.suffix(1)) : acted { add(report) }
    }

    /// Adds the target's outcome from the plan that followed the verb (a pass under way planned again).
    public mutating func add(_ outcome: TargetOutcome) {
        guard case .target(let id, let verb) = followUp, outcome.target == id else { return }
        output.append("\(outcome.target): \(outcome.result.rawValue)" + (outcome.message.map { ": \($0)" } ?? ""))
        // The pass ran what the verb asked for: when that failed again, say so in the exit status.
        if [.failed, .blocked, .held].contains(outcome.result) {
            errors.append("tide: the pass after \(verb) failed for \(id)")
            status = 1
        }
    }

    public mutating func add(_ report: ReconcileReport) {
        switch followUp {
        case .none:
            return
        case .target(let id, _):
            for outcome in report.outcomes where outcome.target == id { add(outcome) }
        case .deployments:
            for outcome in report.outcomes where outcome.result == .deployed {
                output.append("\(outcome.target): deployed \(outcome.fromVersion ?? "-") → \(outcome.toVersion ?? "-")")
            }
            if report.hasFailures {
                errors.append("tide: the reconcile pass reported failures")
                status = 1
            }
        }
    }

    /// The pass failed to run at all.
    public mutating func passFailed(_ error: any Error) {
        errors.append("tide: error: the pass after the request failed: \(error)")
        status = 1
    }
}

extension Reconciler {
    /// Carries out an operator verb — the one code path for the CLI on its own and for `tide run` carrying out a
    /// request: the same checks, the same words, the same records, whoever asked and from wherever. Commits it
    /// writes carry `Tide-Actor:` naming the actor. The pass a verb calls for (`followUp`) is the caller's.
    public func carryOut(_ request: OperatorRequest) async -> OperatorOutcome {
        let what = "tide \(request.verb == .promoteTo ? "promote --to" : request.verb.rawValue)"
        return await Reconciler.$acting.withValue(Acting(request.actor, what)) {
            do {
                return try await carryOutActing(request)
            } catch {
                return .failure("\(error)")
            }
        }
    }

    private func carryOutActing(_ request: OperatorRequest) async throws -> OperatorOutcome {
        guard let environment = request.environment else {
            guard request.verb == .suspend || request.verb == .unsuspend else {
                return .failure("\(request.verb.rawValue) needs an environment (--env)")
            }
            return try await suspension(request)
        }
        switch request.verb {
        case .approve: return try await approving(request, in: environment)
        case .pause, .resume, .abort, .retry, .promote: return try await controlling(request, in: environment)
        case .promoteTo: return try await promoting(request, to: environment)
        case .rollback: return try await rollingBack(request, in: environment)
        case .suspend, .unsuspend: return try await suspension(request)
        }
    }

    /// `tide approve`.
    private func approving(_ request: OperatorRequest, in environment: String) async throws -> OperatorOutcome {
        var outcome = OperatorOutcome()
        do {
            let approval = try await promoter.approve(
                service: request.service, environment: environment, version: request.version, by: request.actor)
            if let note = approval.note { outcome.errors.append("tide: note: \(note)") }
            outcome.output.append(
                "approved \(request.service) \(approval.version) (config \(approval.configDigest.prefix(8)), "
                    + "executor \(approval.executorDigest.prefix(8))) for \(environment) (by \(request.actor)); it "
                    + "starts at the next reconcile")
        } catch let error as ApprovalError {
            return .failure(error.description)
        }
        return outcome
    }

    /// `tide pause`, `resume`, `abort`, `retry`, `promote` (without `--to`).
    private func controlling(_ request: OperatorRequest, in environment: String) async throws -> OperatorOutcome {
        var outcome = OperatorOutcome()
        let id = TargetID(service: request.service, environment: environment)
        let control: RolloutControl =
            switch request.verb {
            case .pause: .pause
            case .resume: .resume
            case .abort: .abort
            case .retry: .retry
            default: .promote(full: request.full)
            }
        // On a target rolling back, retry and abort try the rollback now: the verb's own answer says how that
        // went, and the pass after it has nothing of the verb's to add (the failed version stays held).
        let rollingBack = try await store.liveTarget(id)?.phase == .rollingBack
        do {
            outcome.output.append(
                try await self.control(control, service: request.service, environment: environment, by: request.actor))
        } catch let error as ControlError {
            return .failure(error.description)
        }
        if control != .pause && control != .abort && !(rollingBack && control == .retry) {
            outcome.followUp = .target(id, verb: "\(control)")
        }
        return outcome
    }

    /// `tide promote --to`.
    private func promoting(_ request: OperatorRequest, to environment: String) async throws -> OperatorOutcome {
        var outcome = OperatorOutcome()
        do {
            let promotion = try await promoter.promote(
                service: request.service, to: environment, version: request.version)
            outcome.output.append(
                "committed \(promotion.commit.short): \(request.service) \(promotion.version) in \(environment) "
                    + "(\(promotion.file))"
                    + (promotion.from.isEmpty ? "" : ", from \(promotion.from.joined(separator: ", "))"))
            if !promotion.workTreeUpdated && repository.workingDirectory != nil {
                outcome.output.append(
                    "note: the work tree was not updated (another branch is checked out, or the file has local "
                        + "changes)")
            }
            outcome.output.append("it deploys at the next reconcile, through \(environment)'s gates")
        } catch let error as PromotionError {
            return .failure(error.description)
        }
        return outcome
    }

    /// `tide rollback`.
    private func rollingBack(_ request: OperatorRequest, in environment: String) async throws -> OperatorOutcome {
        var outcome = OperatorOutcome()
        let service = request.service
        do {
            let commits = try await branchWriter.rollbackCommit(service: service, environment: environment).map(\.short)
            outcome.output.append(
                "committed \(commits.joined(separator: ", ")): revert of what \(service)@\(environment) runs")
            if request.reconcile {
                outcome.followUp = .deployments
            } else {
                outcome.output.append("run tide reconcile to roll back (ROLLBACK passes every gate)")
            }
        } catch RollbackError.unpublished(_, let commit, let why) {
            // Rolled back from the local mirror all the same: the remote gets the commit when it answers.
            outcome.output.append(
                "committed \(commit.short): revert of what \(service)@\(environment) runs, on the local mirror")
            outcome.errors.append(
                "tide: warning: not pushed yet (\(why)); the next pass rolls back from it, and it is pushed when "
                    + "the remote answers (tide status shows it as unpublished)")
            if request.reconcile { outcome.followUp = .deployments }
        } catch let error as RollbackError {
            return .failure(error.description)
        }
        return outcome
    }

    /// `tide suspend` / `tide unsuspend`, for one environment or (no `--env`) every environment of the service.
    private func suspension(_ request: OperatorRequest) async throws -> OperatorOutcome {
        let desired = try await resolve(record: false).desired
        let known = desired?.services[request.service]
        let live = try await store.liveTargets().filter { $0.id.service == request.service }
        if known == nil && live.isEmpty {
            return .failure("no service '\(request.service)' in desired state, and nothing of it runs")
        }
        var environments = Set(live.map(\.id.environment))
        environments.formUnion(known?.environmentOrder ?? [])
        if let environment = request.environment {
            guard environments.contains(environment) else {
                return .failure("\(request.service) does not run in \(environment)")
            }
            environments = [environment]
        }
        let now = clock.now()
        let suspension = Suspension(
            service: request.service, environment: request.environment, actor: request.actor, at: now)
        let existing = try await store.suspensions().filter {
            $0.service == request.service && $0.environment == request.environment
        }
        var outcome = OperatorOutcome()
        var write = StateWrite()
        let suspending = request.verb == .suspend
        if suspending {
            write.suspensions = [suspension]
        } else {
            guard !existing.isEmpty else {
                let other = try await store.suspensions().filter { $0.service == request.service }
                return .failure(
                    "\(suspension.scope) is not suspended"
                        + (other.isEmpty ? "" : " (suspended: \(other.map(\.scope).joined(separator: ", ")))"))
            }
            write.liftedSuspensions = existing
        }
        let words = suspending ? "suspended" : "unsuspended"
        for environment in environments.sorted() {
            write.events.append(
                Event(
                    time: now, kind: suspending ? .targetSuspended : .targetUnsuspended,
                    target: TargetID(service: request.service, environment: environment),
                    message: "\(words) by \(request.actor)" + (request.actor.comment.map { ": \($0)" } ?? ""),
                    details: .object(request.actor.details)))
        }
        try await journal.commit(write)
        outcome.output.append(
            suspending
                ? "\(suspension.scope): suspended; Tide leaves it alone (no deployment, rollout step, removal or "
                    + "promotion) until tide unsuspend \(request.service)"
                    + (request.environment.map { " --env \($0)" } ?? "")
                : "\(suspension.scope): unsuspended; the next pass reconciles it")
        return outcome
    }
}
