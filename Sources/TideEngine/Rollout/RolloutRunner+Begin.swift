import Foundation
import TideExecutors
import TideGit
import TideManifest
import TideState

/// A rollout's start (pre-empting an older one, expanding its migrations) and its end (complete, progressing,
/// failed); its steps run in `Rollout/RolloutSteps.swift`.
extension RolloutRunner {
    /// Every step is done: the candidate is what runs, healthy; the deployment goes into the ledger.
    func complete(
        target: DesiredTarget, rollout: Rollout, state live: LiveTarget, desired: DesiredState, calls: Int
    ) async throws -> TargetOutcome {
        var state = live
        let doneAt = clock.now()
        let ledger = try await succeededDeployment(
            target: target, rollout: rollout, liveRevision: state.revision, desired: desired, at: doneAt)
        state.phase = .healthy
        state.version = rollout.version
        state.configDigest = rollout.configDigest
        state.revision = rollout.revision
        if state.migrations != rollout.migrations || (state.migratedAt == nil && !rollout.migrations.isEmpty) {
            state.migratedAt = rollout.migrations.isEmpty ? nil : doneAt
        }
        state.migrationUse = MigrationCoordinator.migrationUse(
            state.migrationUse, from: state.migrations, to: rollout.migrations,
            rollback: rollout.classification == .rollback, service: desired.services[target.id.service],
            desired: desired)
        state.migrations = rollout.migrations
        state.rollout = nil
        state.failed = nil
        state.updatedAt = doneAt
        state.release = Release(
            baseConfigDigest: rollout.baseConfigDigest ?? target.baseConfigDigest,
            executorDigest: rollout.executorDigest ?? target.executorDigest, deployedAt: doneAt, config: rollout.config)
        let lead = doneAt.timeIntervalSince(rollout.startedAt)
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    deploymentEvent(
                        .deploymentSucceeded, target.id, rollout, at: doneAt,
                        "\(rollout.version) is live" + (rollout.reason.map { " (\($0))" } ?? ""),
                        details: [
                            "durationSeconds": .double((lead * 1000).rounded() / 1000),
                            "deploymentId": .string(ledger[0].id),
                            // What ran healthy: the planner's ROLLBACK rule reads it.
                            "configDigest": .string(rollout.configDigest),
                            "executorDigest": .string(rollout.executorDigest ?? target.executorDigest),
                        ])
                ],
                deployments: ledger))
        return TargetOutcome(
            target: target.id, result: .deployed, fromVersion: rollout.previousVersion, toVersion: rollout.version,
            classification: rollout.classification, message: rollout.reason, executorCalls: calls)
    }

    /// How starting a rollout went.
    enum Start {
        case started(Rollout)
        /// It did not start (a pre-emption failed, the database is not ready): the target's outcome.
        case ended(TargetOutcome)
    }

    /// Starts a rollout: pre-empts one still in progress for an older desired state (the executor hears that its
    /// candidate is gone before the new one is deployed), expands (and backfills) what the version needs — a
    /// failure leaves the database and the live app as they were — then freezes the plan and records the start.
    func begin(
        _ action: PlannedAction, target: DesiredTarget, state: inout LiveTarget, desired: DesiredState,
        revision: ObjectID, executor: any Executor, now: Date
    ) async throws -> Start {
        let classification = action.classification ?? .feature
        if let old = state.rollout, state.phase == .progressing {
            if let failure = try await preempt(old, target: target, state: &state, executor: executor, desired: desired)
            {
                return .ended(failure)
            }
        }
        if state.waitingOn == [.database], let due = state.migrationUse.retryAt, now < due {
            // Backing off after a transient database error: not before the announced time.
            return .ended(
                TargetOutcome(
                    target: target.id, result: .waiting, fromVersion: state.version, toVersion: target.version,
                    classification: nil, message: state.waiting, executorCalls: 0, nextDue: due))
        }
        switch try await migrations.prepareMigrations(for: target, desired: desired, revision: revision) {
        case .ready:
            state.migrationUse.retries = 0
            state.migrationUse.retryAt = nil
        case .failed(let failure):
            return .ended(
                try await migrations.failBeforeRollout(
                    target: target, state: state, revision: revision, message: failure, calls: 0))
        case .retry(let message):
            return .ended(
                try await migrations.waitForDatabase(target: target, state: state, revision: revision, message: message)
            )
        }
        var rollout = Rollout(
            version: target.version, config: target.config, configDigest: target.configDigest,
            revision: revision, previousVersion: state.version, classification: classification,
            reason: action.reason, revertedCommit: action.revertedCommit, startedAt: now)
        rollout.migrations = target.migrations
        (rollout.stableConfig, rollout.stableRevision) = stableSide(of: state)
        rollout.stableConfigDigest = state.configDigest
        rollout.baseConfigDigest = target.baseConfigDigest
        rollout.executorDigest = target.executorDigest
        rollout.stableRelease = state.version == nil ? nil : state.release
        rollout.attempt = Self.newAttempt()
        rollout.plan =
            action.fastRollback
            ? RolloutPlan.fastRollbackPlan
            : RolloutPlan.of(
                desired.services[target.id.service]?.strategy ?? StrategySpec(), firstDeployment: state.version == nil)
        // The analyses it runs are frozen with its steps (by digest): an edit of one pre-empts it.
        if let names = rollout.plan?.analysisNames {
            rollout.plan?.analyses = Dictionary(
                uniqueKeysWithValues: names.compactMap { name in desired.analyses[name].map { (name, $0.digest) } })
        }
        state.executor = target.executor
        state.phase = .progressing
        state.rollout = rollout
        state.waiting = nil
        state.waitingOn = []
        state.updatedAt = now
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    Event(
                        time: now, kind: .deploymentStarted, target: target.id, revision: revision,
                        version: target.version, previousVersion: state.version, classification: classification,
                        message: "deploying \(target.version)"
                            + (state.version.map { " (was \($0))" } ?? "") + (action.reason.map { ": \($0)" } ?? "")
                    )
                ]))
        return .started(rollout)
    }

    /// A rollout that goes on at a later pass.
    /// `background`: when the background analysis measures next; the pass is due again at the earlier time.
    /// The due time is kept in the rollout (written when it changes), so `tide status` can say when the rollout
    /// goes on.
    func progressing(
        background: Date? = nil, _ target: TargetID, _ rollout: Rollout, state: inout LiveTarget, message: String,
        executorCalls: Int, nextDue: Date? = nil
    ) async throws -> TargetOutcome {
        let due = [nextDue, background].compactMap { $0 }.min()
        if state.rollout != nil && state.rollout?.nextDue != due {
            var rollout = rollout
            rollout.nextDue = due
            state.rollout = rollout
            try await journal.commit(StateWrite(targets: [state]))
        }
        return TargetOutcome(
            target: target, result: .progressing, fromVersion: rollout.previousVersion, toVersion: rollout.version,
            classification: rollout.classification, message: message, executorCalls: executorCalls, nextDue: due)
    }

    /// A step (an action, or an analysis) failed: the deployment failed, the version is held, and a canary — or
    /// any rollout with `rollback.automatic` — is taken back to stable (RollingBack until that succeeds; see
    /// `startRollingBack`). A recreate without automatic rollback is marked Failed where it stands.
    func failRollout(
        target: DesiredTarget, rollout: Rollout, state failedState: LiveTarget, desired: DesiredState, message: String,
        details: [String: JSONValue], action: ActionRecord?, executor: any Executor, calls: Int
    ) async throws -> TargetOutcome {
        let now = clock.now()
        var state = failedState
        let service = desired.services[target.id.service]
        let keepsStable = rollout.steps(declared: service?.strategy).keepsStable
        let rollsBack =
            (service.map { $0.rollback.automatic || keepsStable } ?? false) && rollout.previousVersion != nil
        let write = StateWrite(
            events: [
                stepEvent(.stepFailed, target.id, rollout, at: now, message, details: details),
                deploymentEvent(
                    .deploymentFailed, target.id, rollout, at: now, message,
                    details: ["deploymentId": .string(Self.deploymentID(target.id, rollout))]),
            ],
            actions: action.map { [$0] } ?? [],
            deployments: [
                failedDeployment(target: target.id, rollout: rollout, desired: desired, at: now, message: message)
            ])
        if rollsBack {
            // Stable never stopped in any strategy but recreate: traffic always goes back to it. A recreate rolls
            // back only when asked to.
            return try await startRollingBack(
                .failure, target: target.id, rollout: rollout, state: state, reason: message,
                writeBack: service?.rollback.writeBack == .revert, desired: desired, fallback: executor, write: write,
                calls: calls
            ).outcome
        }
        state.phase = .failed
        state.rollout = nil
        if rollout.step > 0, rollout.previousVersion == state.version {
            // Recreate without rollback, past its deploy: the candidate is what runs now (unhealthy), and so
            // are the migrations it needs — status must not say the old version runs, and nothing may undo the
            // schema the candidate writes to.
            state.version = rollout.version
            state.configDigest = rollout.configDigest
            state.revision = rollout.revision
            state.migrationUse = MigrationCoordinator.migrationUse(
                state.migrationUse, from: state.migrations, to: rollout.migrations, rollback: false,
                service: service, desired: desired)
            state.migrations = rollout.migrations
            state.migratedAt = rollout.migrations.isEmpty ? nil : now
        }
        state.failed = FailedAttempt(
            version: rollout.version, configDigest: rollout.configDigest, revision: rollout.revision,
            message: message, at: now)
        state.failed?.executorDigest = rollout.executorDigest
        state.updatedAt = now
        var failed = write
        failed.targets = [state]
        try await journal.commit(failed)
        return TargetOutcome(
            target: target.id, result: .failed, fromVersion: rollout.previousVersion, toVersion: rollout.version,
            classification: rollout.classification, message: message, executorCalls: calls)
    }
}

extension RolloutRunner {
    /// The executor the stable side of `rollout` ran with, for actions that bring it back (a rollback, a
    /// pre-emption): the stable revision's executor of `target`, with that revision's files — a broken script a
    /// candidate brought is not what takes it away. `fallback` (the candidate's) when the stable revision cannot be
    /// read (history rewritten) or does not have the target.
    func stableExecutor(of rollout: Rollout, target: TargetID, fallback: any Executor) -> any Executor {
        guard let revision = rollout.stableRevision, revision != rollout.revision,
            let stable = try? loader.load(from: GitCommitSource(repository: repository, commit: revision, root: root)),
            let name = stable.target(target)?.executor, let manifest = stable.executors[name],
            let executor = try? executors.makeExecutor(for: manifest, revision: revision.hex)
        else { return fallback }
        return executor
    }

    /// An event about a step of `rollout` on `target`.
    func stepEvent(
        _ kind: Event.Kind, _ target: TargetID, _ rollout: Rollout, at time: Date, _ message: String,
        details: [String: JSONValue]? = nil
    ) -> Event {
        Event(
            time: time, kind: kind, target: target, revision: rollout.revision, version: rollout.version,
            message: message, details: details.map(JSONValue.object))
    }

    /// An event about the deployment `rollout` as a whole (started, succeeded, failed, superseded).
    func deploymentEvent(
        _ kind: Event.Kind, _ target: TargetID, _ rollout: Rollout, at time: Date, _ message: String,
        details: [String: JSONValue]? = nil
    ) -> Event {
        Event(
            time: time, kind: kind, target: target, revision: rollout.revision, version: rollout.version,
            previousVersion: rollout.previousVersion, classification: rollout.classification, message: message,
            details: details.map(JSONValue.object))
    }

    /// Writes a target's state with one event about its step (and the action record it finished), atomically.
    func commitStep(
        _ state: LiveTarget, _ kind: Event.Kind, _ target: TargetID, _ rollout: Rollout, at time: Date,
        _ message: String, details: [String: JSONValue]? = nil, actions: [ActionRecord] = []
    ) async throws {
        try await journal.commit(
            StateWrite(
                targets: [state], events: [stepEvent(kind, target, rollout, at: time, message, details: details)],
                actions: actions))
    }
}

extension RolloutRunner {
    /// The config the target runs now and the revision it came from: the config its release recorded when it was
    /// deployed — never re-read from git, where the revision may be gone — else (a release recorded before configs
    /// were kept) read from that revision's desired state. Nil when nothing runs, or neither says.
    func stableSide(of state: LiveTarget) -> (JSONValue?, ObjectID?) {
        if state.version != nil, let config = state.release?.config { return (config, state.revision) }
        guard state.version != nil, let revision = state.revision,
            let desired = try? loader.load(from: GitCommitSource(repository: repository, commit: revision, root: root)),
            let stable = desired.target(state.id), stable.configDigest == state.configDigest
        else { return (nil, state.revision) }
        return (stable.config, revision)
    }
}
