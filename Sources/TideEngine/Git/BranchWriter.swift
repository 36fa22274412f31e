public import Foundation
import TideExecutors
public import TideGit
public import TideManifest
import TideState

/// Writes Tide's commits to the tracked branch — write-back after a rollback, `tide rollback`, promotions — one at a
/// time, rebuilt when the remote moved, published, and only on a parent that verifies; and checks that a head is
/// readable and signed before anything applies it.
public struct BranchWriter: EngineCollaborator {
    let context: EngineContext
    let resolver: RevisionResolver
    let migrations: MigrationCoordinator
}

extension BranchWriter {
    /// What writing a rollback back to git did.
    enum WriteBack {
        /// One commit on the tracked branch: `kind` is "revert" or "pin"; `words` say what it did.
        case written(ObjectID, kind: String, words: String)
        /// The branch head already asks for what runs (someone reverted first): nothing to write.
        case matches(ObjectID)
        /// Nothing written, and why (the branch moved on, or no single commit can say what runs).
        case skipped(String)
        /// Written on the local branch, but the remote could not be reached: published later.
        case deferred(ObjectID, parent: ObjectID, kind: String, words: String, why: String)
    }

    /// Writes **one** commit that makes git say what runs on the target after an automatic rollback (see
    /// `writeOneCommit`). `beforePush` is told the commit and its parent once the local branch holds it and before
    /// it goes to the remote (the caller journals it: a crash mid-push is settled at the next start).
    func writeBack(
        target id: TargetID, file: String, failed: FailedAttempt, stable: String, stableDigest: String?,
        stableRevision: ObjectID?, reason: String, beforePush: PushHook? = nil
    ) async throws -> WriteBack {
        let commits = try repository.commits(
            from: failed.revision, excluding: stableRevision, touching: [file], limit: 50)
        return try await writeOneCommit(
            id: id, file: file, failed: (failed.version, failed.configDigest),
            stable: (stable, stableDigest), commits: commits.map(\.id),
            note: "Tide rolled \(id) back to \(stable) after \(failed.version) failed: \(reason)",
            beforePush: beforePush)
    }

    /// Told a commit Tide is about to push, with its parent, what kind of write it is and what it did.
    typealias PushHook = (_ commit: ObjectID, _ parent: ObjectID, _ kind: String, _ words: String) async throws -> Void

    /// Writes **one** commit on the tracked branch that takes `id` from the failed version back to the stable
    /// one, and nothing else:
    ///
    /// - a revert, when a single commit asked for the failed version and reverting it changes only manifests and,
    ///   of all targets, only this one;
    /// - otherwise an in-place edit that pins the environment's version to stable (as `tide promote --to` does),
    ///   when the failed change did not also change the config (a pin cannot bring a config back).
    ///
    /// Each candidate commit is made on no branch and the desired state it makes is loaded and checked before the
    /// branch moves (compare-and-swap). What must never happen: a commit that changes another target's desired
    /// state, or any file that is not a manifest; a commit on a branch that no longer asks for the failed version.
    /// `stable.digest` nil: the stable config is not known (it is not checked, and a pin is written).
    /// `deferrable` (`tide rollback`): when the remote cannot be reached, the commit stays on the local branch —
    /// what the next pass applies — and `.deferred` says so; it is published later (`publishPending`).
    func writeOneCommit(
        id: TargetID, file: String, failed: (version: String, digest: String),
        stable: (version: String, digest: String?),
        commits: [ObjectID], note: String, deferrable: Bool = false, beforePush: PushHook? = nil
    ) async throws -> WriteBack {
        // Someone pushed meanwhile: the commit is rebuilt on their head, whose checks decide again.
        try await rebuildingOnMove {
            try await writeOneCommitOnce(
                id: id, file: file, failed: failed, stable: stable, commits: commits, note: note,
                deferrable: deferrable, beforePush: beforePush)
        }
    }

    private func writeOneCommitOnce(
        id: TargetID, file: String, failed: (version: String, digest: String),
        stable: (version: String, digest: String?),
        commits: [ObjectID], note: String, deferrable: Bool, beforePush: PushHook?
    ) async throws -> WriteBack {
        let branchName = try trackedBranch()
        let head = try repository.resolveCommit(branch: branchName)
        let before: DesiredState
        do {
            before = try loader.load(from: GitCommitSource(repository: repository, commit: head, root: root))
        } catch let error as ManifestError {
            return .skipped("\(head.short) does not validate (\(error.diagnostics.count) problem(s))")
        }
        guard let wanted = before.target(id) else {
            return .skipped("\(id) is not in desired state at \(head.short) any more")
        }
        let isStable = { (target: DesiredTarget) in
            target.version == stable.version && (stable.digest == nil || target.configDigest == stable.digest)
        }
        if isStable(wanted) { return .matches(head) }
        guard wanted.version == failed.version && wanted.configDigest == failed.digest else {
            return .skipped("\(branchName) moved on: \(head.short) asks for \(wanted.version), not \(failed.version)")
        }
        let restoresOnlyThisTarget = { (commit: ObjectID) in
            restoresOnly(id, isStable: isStable, in: commit, head: head, before: before)
        }
        let move = { (candidate: ObjectID, head: ObjectID, kind: String, words: String) in
            try await publishWriteBack(
                candidate, from: head, kind: kind, words: words, deferrable: deferrable, beforePush: beforePush)
        }
        if commits.count == 1, let commit = commits.first {
            let summary = (try? repository.commit(commit).summary) ?? commit.short
            let message =
                "Revert \"\(summary)\"\n\nThis reverts commit \(commit.hex).\n\n\(note)\n\n"
                + "Tide-Actor: \(Reconciler.acting.trailer)\n"
            if let candidate = try? repository.makeRevertCommit([commit], parent: head, message: message),
                restoresOnlyThisTarget(candidate)
            {
                return try await move(
                    candidate, head, "revert",
                    "reverted \(commit.short) in \(candidate.short) so git says what runs")
            }
        }
        guard stable.digest == nil || failed.digest == stable.digest else {
            return .skipped(
                "\(failed.version) also changed the config, and a revert would change other targets or files; git "
                    + "still asks for the failed version, which is held — fix or revert it in git")
        }
        guard let blob = try repository.files(at: head, under: "").first(where: { $0.path == file }) else {
            return .skipped("\(file) is not in \(head.short)")
        }
        let edited = try ManifestEditor.settingVersion(
            in: String(decoding: try repository.blob(blob.blob), as: UTF8.self), file: file, service: id.service,
            environment: id.environment, version: stable.version)
        let message = Self.pinMessage(id, stable: stable.version, failed: failed.version, note: note)
        let candidate = try repository.makeFileCommit(
            path: file, contents: Array(edited.utf8), parent: head, message: message)
        guard restoresOnlyThisTarget(candidate) else {
            return .skipped("pinning \(id.environment) to \(stable.version) would change other targets")
        }
        return try await move(
            candidate, head, "pin",
            "pinned \(id.environment) to \(stable.version) in \(candidate.short) so git says what runs")
    }

    /// Moves the branch to a write-back's commit and publishes it; a publication the remote could not take,
    /// deferred.
    private func publishWriteBack(
        _ candidate: ObjectID, from head: ObjectID, kind: String, words: String, deferrable: Bool,
        beforePush: PushHook?
    ) async throws -> WriteBack {
        do {
            _ = try await moveBranch(
                trackedBranch(), from: head, to: candidate,
                reason: kind == "revert" ? "revert" : "pin after rollback",
                deferrable: deferrable,
                beforePush: beforePush.map { hook in { try await hook(candidate, head, kind, words) } })
        } catch let deferred as PublishDeferred {
            return .deferred(candidate, parent: head, kind: kind, words: words, why: deferred.message)
        }
        return .written(candidate, kind: kind, words: words)
    }

    /// Whether `commit`, built on `head`, changes only manifests and, of all targets, only takes `id` back to the
    /// stable release (every other target asks for what it asked for at `head`).
    private func restoresOnly(
        _ id: TargetID, isStable: (DesiredTarget) -> Bool, in commit: ObjectID, head: ObjectID, before: DesiredState
    ) -> Bool {
        guard
            let after = try? loader.load(from: GitCommitSource(repository: repository, commit: commit, root: root)),
            after.targets.count == before.targets.count, let mine = after.target(id), isStable(mine)
        else { return false }
        let prefix = root.isEmpty ? "" : root.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/"
        let onlyManifests = ((try? repository.changedPaths(from: head, to: commit)) ?? []).allSatisfy { change in
            [change.oldPath, change.newPath].allSatisfy {
                $0.hasPrefix(prefix) && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml"))
            }
        }
        return onlyManifests
            && before.targets.allSatisfy { other in
                other.id == id
                    || after.target(other.id).map {
                        $0.version == other.version && $0.configDigest == other.configDigest
                    } == true
            }
    }

    /// The message of a pin after a rollback.
    private static func pinMessage(_ id: TargetID, stable: String, failed: String, note: String) -> String {
        """
        Pin \(id.service) to \(stable) in \(id.environment): \(failed) failed

        \(note)

        This commit makes git say what runs in \(id.environment) (spec.environments.\(id.environment).version);
        other environments keep their versions. While the pin is there, \(id.environment) does not follow
        spec.version: to try \(failed) or a newer version there, change or remove the pin.

        Tide-Rollback: \(id.service) \(id.environment) \(stable)
        Tide-Actor: \(Reconciler.acting.trailer)

        """
    }

    /// `tide rollback`: one commit that takes the target back to the version before its live deployment — the
    /// revert of what that deployment shipped when it changes nothing but this target, else a pin of the
    /// environment's version (as an automatic rollback writes back) — so the next pass rolls back on the fast path
    /// (ROLLBACK passes every gate). Nothing is written when the branch already asks for that version, or the
    /// rollback would go past a contracted migration.
    public func rollbackCommit(service: String, environment: String) async throws -> [ObjectID] {
        let id = TargetID(service: service, environment: environment)
        guard let live = try await store.liveTarget(id), let version = live.version, let digest = live.configDigest
        else {
            throw RollbackError.nothingLive(id)
        }
        let deployment = try await store.deployments(DeploymentQuery(target: id, limit: 100))
            .first { $0.succeeded && $0.version == version && $0.classification != .rollback }
        // A first deployment has nothing to go back to: reverting the commits that created the service would
        // remove it, which is a different decision.
        guard let deployment, let previous = deployment.previousVersion, !deployment.changes.isEmpty,
            let file = try await resolver.resolve(record: false).desired?.services[service]?.location.file
        else {
            throw RollbackError.nothingToRevert(id, version)
        }
        let head = try repository.resolveCommit(branch: trackedBranch())
        let commits = deployment.changes.sorted { $0.committedAt > $1.committedAt }.map(\.commit)
        try await refuseRollbackPastContract(id, live: live, reverting: commits, head: head)
        // The config the previous version ran with, when its deployment recorded it.
        let earlier = try await store.events(
            EventQuery(service: service, environment: environment, kinds: [.deploymentSucceeded], limit: 1000))
        let previousDigest = earlier.first { $0.version == previous && $0.time < deployment.startedAt }.flatMap {
            event -> String? in
            guard case .object(let details)? = event.details, case .string(let digest)? = details["configDigest"] else {
                return nil
            }
            return digest
        }
        let note = "Rolled back with tide rollback \(service) --env \(environment)."
        let written = try await writeOneCommit(
            id: id, file: file, failed: (version, digest), stable: (previous, previousDigest), commits: commits,
            note: note, deferrable: true)
        switch written {
        case .matches:
            throw RollbackError.alreadyReverted(id, version, commits)
        case .skipped(let why):
            throw RollbackError.cannotWrite(id, why)
        case .written(let commit, let kind, let words):
            try await journal.commit(
                StateWrite(events: [
                    Event(
                        time: clock.now(), kind: .revertCommitted, target: id, revision: commit, version: previous,
                        previousVersion: version, classification: .rollback, message: "tide rollback \(words)",
                        details: .object(["writeBack": .string(kind), "commit": .string(commit.hex)]))
                ]))
            return [commit]
        case .deferred(let commit, let parent, let kind, let words, let why):
            // Rolled back from the local mirror: the next pass applies it; the remote gets it when it answers.
            var status = try await store.repositoryStatus()
            status.unpublished =
                (status.unpublished ?? []).filter { $0.target != id } + [
                    UnpublishedCommit(
                        commit: commit, parent: parent, target: id, file: file, failedVersion: version,
                        failedDigest: digest, stableVersion: previous, stableDigest: previousDigest, reverting: commits,
                        note: note, actor: Reconciler.acting.actor, what: Reconciler.acting.what, at: clock.now(),
                        why: why)
                ]
            try await journal.commit(
                StateWrite(
                    events: [
                        Event(
                            time: clock.now(), kind: .revertCommitted, target: id, revision: commit, version: previous,
                            previousVersion: version, classification: .rollback,
                            message: "tide rollback \(words); not pushed yet (\(why)): pushed when the remote answers",
                            details: .object([
                                "writeBack": .string(kind), "commit": .string(commit.hex), "unpublished": .bool(true),
                            ]))
                    ], repositoryStatus: status))
            throw RollbackError.unpublished(id, commit, why)
        }
    }

    /// Publishes the commits `tide rollback` wrote while the remote could not be reached (`unpublished`), before a
    /// pass reads the branch: the local branch is put back on the commit (a fetch moved it to the remote's head),
    /// and it is pushed (compare-and-swap, never forced). When someone pushed meanwhile, the commit is written
    /// again on their head — or dropped, when their head already says what runs, or no longer asks for the failed
    /// version. A push that still fails keeps it for the next pass.
    func publishPending() async throws {
        guard publisher != nil else { return }
        var status = try await store.repositoryStatus()
        guard let pending = status.unpublished, !pending.isEmpty else { return }
        var remaining: [UnpublishedCommit] = []
        var events: [Event] = []
        for entry in pending {
            let now = clock.now()
            do {
                let branch = try trackedBranch()
                let head = try repository.resolveCommit(branch: branch)
                if head == entry.commit || head == entry.parent {
                    if head == entry.parent {
                        _ = try repository.advance(
                            branch: branch, from: head, to: entry.commit, reason: "unpublished rollback")
                    }
                    // While fetches fail, a push would only wait for its deadline: tried once the remote answers.
                    if try await store.sourceStatus()?.lastFetchError != nil {
                        remaining.append(entry)
                        continue
                    }
                    do {
                        try await self.publisher?.publish(
                            branch: branch, from: entry.parent, to: entry.commit,
                            reason: "tide rollback (published late)",
                            deferrable: true)
                        events.append(
                            Event(
                                time: now, kind: .revertCommitted, target: entry.target, revision: entry.commit,
                                version: entry.stableVersion, previousVersion: entry.failedVersion,
                                classification: .rollback,
                                message: "published \(entry.commit.short), written by tide rollback while the remote "
                                    + "could not be reached"))
                    } catch let deferred as PublishDeferred {
                        var still = entry
                        still.why = deferred.message
                        remaining.append(still)
                    } catch is BranchMoved {
                        remaining.append(entry)  // rebuilt on the new head at the next pass
                    }
                    continue
                }
                let (event, still) = try await rebuild(entry, on: head, status: &status, now: now)
                events += event.map { [$0] } ?? []
                remaining += still.map { [$0] } ?? []
            } catch {
                remaining.append(entry)
            }
        }
        status.unpublished = remaining.isEmpty ? nil : remaining
        try await journal.commit(StateWrite(events: events, repositoryStatus: status))
    }

    /// Someone pushed while the remote was down: the same rollback, written again on their head (the old commit
    /// will never be published; a head on top of its parent is not a rewrite). What happened, and the entry when
    /// it is still pending.
    private func rebuild(
        _ entry: UnpublishedCommit, on head: ObjectID, status: inout RepositoryStatus, now: Date
    ) async throws -> (Event?, UnpublishedCommit?) {
        var kept = status.rebuilt ?? [:]
        kept[entry.commit.hex] = entry.parent
        // Only what the applied revision's chain still needs is worth keeping (a few at most).
        if kept.count > 50, let applied = status.lastGoodRevision {
            var needed: [String: ObjectID] = [:]
            var next = applied.hex
            while let parent = kept[next], needed.count < 20 {
                needed[next] = parent
                next = parent.hex
            }
            needed[entry.commit.hex] = entry.parent
            kept = needed
        }
        status.rebuilt = kept
        let rebuilt = try await Reconciler.$acting.withValue(Acting(entry.actor, entry.what)) {
            try await writeOneCommit(
                id: entry.target, file: entry.file, failed: (entry.failedVersion, entry.failedDigest),
                stable: (entry.stableVersion, entry.stableDigest), commits: entry.reverting, note: entry.note,
                deferrable: true)
        }
        switch rebuilt {
        case .written(let commit, _, let words):
            return (
                Event(
                    time: now, kind: .revertCommitted, target: entry.target, revision: commit,
                    version: entry.stableVersion, previousVersion: entry.failedVersion, classification: .rollback,
                    message: "tide rollback, written again on \(head.short): \(words)"), nil
            )
        case .deferred(let commit, let parent, _, _, let why):
            var still = entry
            (still.commit, still.parent, still.why) = (commit, parent, why)
            return (nil, still)
        case .matches:
            return (
                Event(
                    time: now, kind: .reconcileError, target: entry.target, revision: head,
                    message: "unpublished rollback \(entry.commit.short) dropped: \(head.short) already asks for "
                        + "\(entry.stableVersion)"), nil
            )
        case .skipped(let why):
            return (
                Event(
                    time: now, kind: .reconcileError, target: entry.target, revision: head,
                    message: "unpublished rollback \(entry.commit.short) dropped: \(why)"), nil
            )
        }
    }
}

/// An environment's version that a Tide rollback pinned, and that still holds it back from `spec.version`.
public struct RollbackPin: Sendable, Hashable, Codable {
    public var target: TargetID
    public var version: String
    /// What the service's `spec.version` asks for everywhere else.
    public var specVersion: String
    /// The pin commit.
    public var commit: ObjectID

    public var description: String {
        "\(target) stays on \(version), pinned by Tide's rollback commit \(commit.short) "
            + "(spec.environments.\(target.environment).version); spec.version is \(specVersion) — change or remove "
            + "the pin to let \(target.environment) follow it"
    }
}

extension BranchWriter {
    /// The environments a rollback write-back pinned whose pin still holds them back from `spec.version`: found by
    /// the `Tide-Rollback:` trailer of the newest commits that touched each such service's file.
    public func rollbackPins(desired: DesiredState) -> [RollbackPin] {
        guard let revision = desired.revision else { return [] }
        var pins: [RollbackPin] = []
        for service in desired.services.values.sorted(by: { $0.name < $1.name }) {
            guard let specVersion = service.version else { continue }
            let held = service.environmentOrder.compactMap { environment -> (String, String)? in
                guard let version = service.environments[environment]?.version, version != specVersion else {
                    return nil
                }
                return (environment, version)
            }
            guard !held.isEmpty,
                let commits = try? repository.commits(
                    from: revision, touching: [service.location.file], limit: 50)
            else { continue }
            for (environment, version) in held {
                let trailer = "Tide-Rollback: \(service.name) \(environment) \(version)"
                // The newest commit that set this environment's version is Tide's pin when it carries the trailer.
                if let pin = commits.first(where: { $0.message.contains(trailer) }) {
                    pins.append(
                        RollbackPin(
                            target: TargetID(service: service.name, environment: environment), version: version,
                            specVersion: specVersion, commit: pin.id))
                }
            }
        }
        return pins
    }

    /// A rollback whose version would not list a migration that was contracted here is refused before anything is
    /// written (reconcile would refuse the revert anyway): the reverts are tried on a commit on no branch, and the
    /// desired state they make is read.
    func refuseRollbackPastContract(
        _ id: TargetID, live: LiveTarget, reverting commits: [ObjectID], head: ObjectID
    ) async throws {
        guard !live.migrations.isEmpty,
            let candidate = try? repository.makeRevertCommit(commits, parent: head, message: "tide rollback check"),
            let after = try? loader.load(from: GitCommitSource(repository: repository, commit: candidate, root: root)),
            let wanted = after.target(id)
        else { return }
        let dropped = live.migrations.filter { !wanted.migrations.contains($0) }
        guard !dropped.isEmpty else { return }
        var executors = after.executors
        if let revision = live.revision,
            let then = try? loader.load(from: GitCommitSource(repository: repository, commit: revision, root: root))
        {
            executors.merge(then.executors) { current, _ in current }
        }
        let statuses = try await migrations.migrationStatuses(environment: id.environment, executors: executors)
        if let name = dropped.first(where: { statuses[$0]?.contract != nil }), let contract = statuses[name]?.contract {
            throw RollbackError.pastContract(id, wanted.version, name, contract.appliedAt)
        }
    }
}

/// Why `tide rollback` cannot write a revert.
public enum RollbackError: Error, CustomStringConvertible, Sendable {
    case nothingLive(TargetID)
    case nothingToRevert(TargetID, String)
    /// Every commit that brought the version is already reverted on the branch: nothing was written.
    case alreadyReverted(TargetID, String, [ObjectID])
    /// No single commit can take the target back without touching others (the reason says why).
    case cannotWrite(TargetID, String)
    /// Going back would take the target to a version without a migration whose contract ran.
    case pastContract(TargetID, String, String, Date)
    /// Written on the local mirror, the remote could not be reached: the next pass rolls back, the push follows.
    case unpublished(TargetID, ObjectID, String)

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
        case .cannotWrite(let id, let why):
            "nothing written for \(id): \(why)"
        case .pastContract(let id, let version, let migration, let at):
            "nothing written: \(id) would go back to \(version), which does not list migration \(migration), and "
                + "its contract ran at \(GateEvaluator.format(at)) (what it removed is gone). Roll forward instead: "
                + "a new version with the fix"
        case .unpublished(let id, let commit, let why):
            "committed \(commit.short) for \(id) on the local mirror, not pushed yet (\(why)); the next pass rolls "
                + "back from it, and it is pushed when the remote answers (tide status shows it as unpublished)"
        }
    }
}
