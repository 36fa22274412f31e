import Foundation
import TideExecutors
public import TideGit
public import TideManifest
import TideState

extension Reconciler {
    /// Automatic rollback after a failed step: the executor's `rollback` action brings the stable version back and
    /// `health` checks it; the failed version stays held. With `writeBack: revert`, the commits that asked for the
    /// failed version are reverted in the config repo, so git says what runs.
    func rollBack(
        target: DesiredTarget, to stable: String, after rollout: Rollout, state failedState: LiveTarget,
        reason: String, spec: RollbackSpec, executor: any Executor, calls: Int
    ) async throws -> TargetOutcome {
        var state = failedState
        var calls = calls
        let base = "\(target.id.service).\(target.id.environment).\(rollout.revision.short)"
        var failure: String?
        for (action, step) in [(ExecutorAction.rollback, "rollback"), (.health, "rollback-health")] {
            let actionID = "\(base).\(step)"
            let startedAt = clock.now()
            try await store.apply(
                StateWrite(actions: [
                    ActionRecord(
                        id: actionID, target: target.id, action: action.rawValue, status: .started,
                        startedAt: startedAt)
                ]))
            let result = await executor.perform(
                ActionRequest(
                    action: action, service: target.id.service, environment: target.id.environment, version: stable,
                    previousVersion: rollout.version, weight: 100, revision: rollout.revision.hex,
                    actionID: actionID, config: rollout.config))
            calls += 1
            try await store.apply(
                StateWrite(actions: [
                    ActionRecord(
                        id: actionID, target: target.id, action: action.rawValue,
                        status: result.succeeded ? .succeeded : .failed, startedAt: startedAt,
                        finishedAt: clock.now(), message: result.succeeded ? nil : result.summary)
                ]))
            if !result.succeeded {
                failure = "\(action.rawValue) of \(stable) \(result.summary)"
                break
            }
        }
        let now = clock.now()
        if let failure {
            try await store.apply(
                StateWrite(events: [
                    Event(
                        time: now, kind: .stepFailed, target: target.id, revision: rollout.revision, version: stable,
                        message: "automatic rollback failed: \(failure)")
                ]))
            return TargetOutcome(
                target: target.id, result: .failed, fromVersion: rollout.previousVersion, toVersion: rollout.version,
                classification: rollout.classification, message: "\(reason); automatic rollback failed: \(failure)",
                executorCalls: calls)
        }

        state.phase = .rolledBack
        state.updatedAt = now
        var ledger = try await store.deployments(
            DeploymentQuery(ids: [Self.deploymentID(target.id, rollout)], limit: 1))
        for index in ledger.indices { ledger[index].recoveredAt = now }
        ledger.append(
            DeploymentRecord(
                id: Self.deploymentID(target.id, rollout) + ".rollback", target: target.id,
                production: ledger.first?.production ?? false, revision: rollout.revision, version: stable,
                previousVersion: rollout.version, classification: .rollback, startedAt: now, finishedAt: now,
                succeeded: true))
        var events = [
            Event(
                time: now, kind: .deploymentRolledBack, target: target.id, revision: rollout.revision,
                version: stable, previousVersion: rollout.version, classification: .rollback,
                message: "rolled back to \(stable) automatically: \(reason)",
                // The rollback action carried the rollout's config: stable ran healthy with its own config only
                // when the two are the same (the planner's ROLLBACK rule reads this).
                details: rollout.configDigest == state.configDigest
                    ? .object(["configDigest": .string(rollout.configDigest)]) : nil)
        ]
        var message = "rolled back to \(stable) automatically"
        if spec.writeBack == .revert {
            do {
                switch try writeBack(
                    target: target, failed: rollout, stableDigest: state.configDigest,
                    stableRevision: state.revision, reason: reason)
                {
                case .written(let commit, let kind, let words):
                    // Git now says what runs: the next change is classified against this commit.
                    state.revision = commit
                    events.append(
                        Event(
                            time: now, kind: .revertCommitted, target: target.id, revision: commit, version: stable,
                            previousVersion: rollout.version, classification: .rollback, message: words,
                            details: .object(["writeBack": .string(kind), "commit": .string(commit.hex)])))
                    message += "; \(words)"
                case .matches(let head):
                    state.revision = head
                case .skipped(let why):
                    events.append(
                        Event(
                            time: now, kind: .reconcileError, target: target.id, revision: rollout.revision,
                            message: "nothing written back to git: \(why)"))
                    message += "; nothing written back to git: \(why)"
                }
            } catch {
                events.append(
                    Event(
                        time: now, kind: .reconcileError, target: target.id, revision: rollout.revision,
                        message: "could not write the rollback back to git: \(error)"))
                message += "; could not write the rollback back to git: \(error)"
            }
        }
        try await store.apply(StateWrite(targets: [state], events: events, deployments: ledger))
        return TargetOutcome(
            target: target.id, result: .failed, fromVersion: rollout.previousVersion, toVersion: rollout.version,
            classification: rollout.classification, message: "\(reason); \(message)", executorCalls: calls)
    }

    /// What writing a rollback back to git did.
    enum WriteBack {
        /// One commit on the tracked branch: `kind` is "revert" or "pin"; `words` say what it did.
        case written(ObjectID, kind: String, words: String)
        /// The branch head already asks for what runs (someone reverted first): nothing to write.
        case matches(ObjectID)
        /// Nothing written, and why (the branch moved on, or no single commit can say what runs).
        case skipped(String)
    }

    /// Writes **one** commit that makes git say what runs on the target after a rollback: the revert of the
    /// commits that asked for the failed version when that revert changes nothing but this target, otherwise an
    /// in-place edit pinning the environment's version to stable (as `tide promote --to` edits it). Each
    /// candidate commit is checked by loading the desired state it makes before the branch is moved (with a
    /// compare-and-swap): no other target may change. Never written when the branch no longer asks for the
    /// failed version, or when only a config change could restore stable and a revert would touch other targets.
    func writeBack(
        target: DesiredTarget, failed rollout: Rollout, stableDigest: String?, stableRevision: ObjectID?,
        reason: String
    ) throws -> WriteBack {
        guard let stable = rollout.previousVersion else { return .skipped("there is no stable version") }
        let branchName = try trackedBranch()
        let head = try repository.resolveCommit(branch: branchName)
        let before: DesiredState
        do {
            before = try loader.load(from: GitCommitSource(repository: repository, commit: head, root: root))
        } catch let error as ManifestError {
            return .skipped("\(head.short) does not validate (\(error.diagnostics.count) problem(s))")
        }
        guard let wanted = before.target(target.id) else {
            return .skipped("\(target.id) is not in desired state at \(head.short) any more")
        }
        if wanted.version == stable && wanted.configDigest == stableDigest { return .matches(head) }
        guard wanted.version == rollout.version && wanted.configDigest == rollout.configDigest else {
            return .skipped("\(branchName) moved on: \(head.short) asks for \(wanted.version), not \(rollout.version)")
        }
        func restoresOnlyThisTarget(_ commit: ObjectID) -> Bool {
            guard
                let after = try? loader.load(from: GitCommitSource(repository: repository, commit: commit, root: root)),
                after.targets.count == before.targets.count,
                let mine = after.target(target.id), mine.version == stable, mine.configDigest == stableDigest
            else { return false }
            return before.targets.allSatisfy { other in
                other.id == target.id
                    || after.target(other.id).map {
                        $0.version == other.version && $0.configDigest == other.configDigest
                    }
                        == true
            }
        }
        let trailer = "\nTide rolled \(target.id) back to \(stable) after \(rollout.version) failed: \(reason)\n"
        let commits = try repository.commits(
            from: rollout.revision, excluding: stableRevision, touching: [target.location.file], limit: 50)
        if !commits.isEmpty {
            let subject =
                commits.count == 1
                ? "Revert \"\(commits[0].summary)\""
                : "Revert \(commits.count) commits that took \(target.id) to \(rollout.version)"
            let message =
                subject + "\n\n" + commits.map { "This reverts commit \($0.id.hex).\n" }.joined() + trailer
            if let candidate = try? repository.makeRevertCommit(commits.map(\.id), parent: head, message: message),
                restoresOnlyThisTarget(candidate)
            {
                _ = try repository.advance(branch: branchName, from: head, to: candidate, reason: "revert")
                return .written(
                    candidate, kind: "revert",
                    words: "reverted \(commits.map(\.id.short).joined(separator: ", ")) in \(candidate.short) so git "
                        + "says what runs")
            }
        }
        guard rollout.configDigest == stableDigest else {
            return .skipped(
                "\(rollout.version) also changed the config, and reverting it would change other targets; git "
                    + "still asks for the failed version, which is held — fix or revert it in git")
        }
        let file = target.location.file
        guard let blob = try repository.files(at: head, under: "").first(where: { $0.path == file }) else {
            return .skipped("\(file) is not in \(head.short)")
        }
        let edited = try ManifestEditor.settingVersion(
            in: String(decoding: try repository.blob(blob.blob), as: UTF8.self), file: file,
            service: target.id.service, environment: target.id.environment, version: stable)
        let message = """
            Pin \(target.id.service) to \(stable) in \(target.id.environment): \(rollout.version) failed
            \(trailer)
            This commit makes git say what runs in \(target.id.environment); other environments keep their versions.
            To try \(rollout.version) again there, remove the pin (or commit a fixed version).

            Tide-Rollback: \(target.id.service) \(target.id.environment) \(stable)

            """
        let candidate = try repository.makeFileCommit(
            path: file, contents: Array(edited.utf8), parent: head, message: message)
        guard restoresOnlyThisTarget(candidate) else {
            return .skipped("pinning \(target.id.environment) to \(stable) would change other targets")
        }
        _ = try repository.advance(branch: branchName, from: head, to: candidate, reason: "pin after rollback")
        return .written(
            candidate, kind: "pin",
            words: "pinned \(target.id.environment) to \(stable) in \(candidate.short) so git says what runs")
    }

    /// `tide rollback`: revert the commits the live deployment of a target shipped, so the next pass rolls back
    /// on the fast path (ROLLBACK passes every gate).
    public func rollbackCommit(service: String, environment: String) async throws -> [ObjectID] {
        let id = TargetID(service: service, environment: environment)
        guard let live = try await store.liveTarget(id), let version = live.version else {
            throw RollbackError.nothingLive(id)
        }
        let deployment = try await store.deployments(DeploymentQuery(target: id, limit: 100))
            .first { $0.succeeded && $0.version == version && $0.classification != .rollback }
        // A first deployment has nothing to go back to: reverting the commits that created the service would
        // remove it, which is a different decision.
        guard let deployment, deployment.previousVersion != nil, !deployment.changes.isEmpty else {
            throw RollbackError.nothingToRevert(id, version)
        }
        let branchName = try trackedBranch()
        let head = try repository.resolveCommit(branch: branchName)
        let commits = deployment.changes.sorted { $0.committedAt > $1.committedAt }.map(\.commit)
        let result = try repository.revert(
            commits, branch: branchName, parent: head,
            note: "Rolled back with tide rollback \(service) --env \(environment).")
        guard !result.commits.isEmpty else {
            throw RollbackError.alreadyReverted(id, version, commits)
        }
        try await store.apply(
            StateWrite(events: [
                Event(
                    time: clock.now(), kind: .revertCommitted, target: id, revision: result.commits.last,
                    version: deployment.previousVersion, previousVersion: version, classification: .rollback,
                    message: "tide rollback reverted " + commits.map(\.short).joined(separator: ", "))
            ]))
        return result.commits
    }
}

/// Why `tide rollback` cannot write a revert.
public enum RollbackError: Error, CustomStringConvertible, Sendable {
    case nothingLive(TargetID)
    case nothingToRevert(TargetID, String)
    /// Every commit that brought the version is already reverted on the branch: nothing was written.
    case alreadyReverted(TargetID, String, [ObjectID])

    public var description: String {
        switch self {
        case .nothingLive(let id): "\(id) runs nothing yet"
        case .nothingToRevert(let id, let version):
            "no commit brought \(version) to \(id) (it was the first deployment, or a rollback itself); "
                + "edit the version in git instead"
        case .alreadyReverted(let id, let version, let commits):
            "nothing written: the commits that brought \(version) to \(id) ("
                + commits.map(\.short).joined(separator: ", ") + ") are already reverted on the branch; "
                + "tide reconcile rolls back"
        }
    }
}
