import Foundation
public import TideGit
public import TideManifest
import TideState

/// Reads the desired state a pass applies: the tracked branch's head, read by a child first, its signature
/// verified, its manifests loaded and checked; an invalid head is rejected (once per revision, in the event log)
/// and the last good revision applied instead.
public struct RevisionResolver: EngineCollaborator {
    let context: EngineContext

    /// The desired state a pass would apply.
    public struct Resolution: Sendable {
        public var head: ObjectID
        /// nil when `head` was rejected and nothing was ever accepted.
        public var desired: DesiredState?
        public var rejected: [Diagnostic]
    }

    /// Loads the head's desired state; when it is invalid, falls back to the last good revision.
    /// With `record`, acceptance and rejection are written to the state store (once per revision).
    public func resolve(record: Bool) async throws -> Resolution {
        let head = try repository.resolveCommit(branch: trackedBranch())
        // Before anything walks history here: a damaged loose object would make libgit2 spin for ever.
        try repository.verifyLooseObjects()
        let status = try await store.repositoryStatus()
        let now = clock.now()
        // (Read here, before the child's check: the loose objects were just verified, and a head that cannot be
        // read at all is left to that check.)
        if !root.isEmpty, status.lastGoodRevision == nil, repository.isDirectory(root, at: head) == false {
            throw EngineError.rootMissing(root: root, head: head)
        }
        do {
            // Read by the child first: the signature check below reads the commit in this process.
            try await checkReadable(head)
            try verifySignature(of: head)
            if status.lastGoodBranch == nil || status.lastGoodBranch == (try? trackedBranch()) {
                try requireDescent(of: head, from: status.lastGoodRevision, rebuilt: status.rebuilt ?? [:])
            }
            let desired = try loader.load(from: GitCommitSource(repository: repository, commit: head, root: root))
            if record && status.lastGoodRevision != head {
                var updated = status
                updated.lastGoodRevision = head
                updated.lastGoodBranch = try? trackedBranch()
                updated.lastGoodAt = now
                updated.rejectedRevision = nil
                updated.rejection = []
                let commit = try repository.commit(head)
                try await journal.commit(
                    StateWrite(
                        events: [
                            Event(
                                time: now, kind: .revisionAccepted, revision: head,
                                message: "accepted \(head.short): \(commit.summary)",
                                details: .object(["targets": .int(Int64(desired.targets.count))]))
                        ], repositoryStatus: updated))
            }
            return Resolution(head: head, desired: desired, rejected: [])
        } catch let error as ManifestError {
            if record && status.rejectedRevision != head {
                var updated = status
                updated.rejectedRevision = head
                updated.rejectedAt = now
                // Kept: the first `storedDiagnostics` problems, and how many more there were (a commit with a million
                // problems must not write hundreds of megabytes into the state and every status).
                let kept = Array(error.diagnostics.prefix(Self.storedDiagnostics))
                let more = error.diagnostics.count - kept.count
                updated.rejection =
                    more > 0
                    ? kept + [Diagnostic(kept[kept.count - 1].location, "… and \(more) more problem(s), not kept")]
                    : kept
                try await journal.commit(
                    StateWrite(
                        events: [
                            Event(
                                time: now, kind: .revisionRejected, revision: head,
                                message: "rejected \(head.short): \(error.diagnostics.count) problem(s); "
                                    + "keeping \(status.lastGoodRevision?.short ?? "nothing")",
                                details: .array(updated.rejection.map { .string($0.description) }))
                        ], repositoryStatus: updated))
            }
            var desired: DesiredState?
            // The last good revision is applied only while it still verifies (verification turned on later, or
            // its key removed, leaves nothing applied rather than something unsigned).
            // A last good revision rewritten away and collected leaves nothing applied (not a pass that fails).
            if let good = status.lastGoodRevision, repository.contains(good), (try? verifySignature(of: good)) != nil {
                desired = try loader.load(from: GitCommitSource(repository: repository, commit: good, root: root))
            }
            return Resolution(head: head, desired: desired, rejected: error.diagnostics)
        }
    }

    /// How many of a rejected revision's problems the state keeps.
    public static let storedDiagnostics = 200

    /// A head that does not descend from the revision applied last is not a revert — a revert is a commit on
    /// top — but a history rewrite: a force-push, perhaps back to an older commit that is validly signed (with
    /// `--verify-commits`, the one way someone without the key could take production back). It is held like an
    /// invalid revision (`revision.rejected`, the last good one stays applied) until a commit on top of what runs
    /// fixes the branch, or `--allow-history-rewrite` says rewrites are expected.
    ///
    /// Must never happen: production moved to an older version by a branch moved backwards, without a person's
    /// say; a descendant (a revert, a fix, a promotion Tide wrote) held.
    ///
    /// A commit Tide wrote while the remote was down and wrote again on a head someone pushed meanwhile is never
    /// published: the head then descends from the commit it was built on (`rebuilt`), which counts.
    func requireDescent(of head: ObjectID, from applied: ObjectID?, rebuilt: [String: ObjectID] = [:]) throws {
        guard !context.dependencies.allowHistoryRewrite, let applied, applied != head else { return }
        // Followed through every rebuild (a rollback rebuilt on a commit that was itself rebuilt).
        var anchors = [applied]
        while anchors.count <= 20, let parent = rebuilt[anchors[anchors.count - 1].hex] { anchors.append(parent) }
        let descends = anchors.contains { anchor in
            repository.contains(anchor) && (try? repository.isAncestor(anchor, of: head)) == true
        }
        guard !descends else { return }
        // A shallow clone (a CI checkout of depth 1 with a kept state) may not hold what was applied, or the
        // commits between: descent cannot be told there, and the head is not held for it.
        if repository.isShallow, !anchors.contains(where: repository.contains) { return }
        throw ManifestError(
            commit: head,
            "\(head.short) does not descend from \(applied.short), the revision applied last: the branch was "
                + "rewritten or moved back (a force-push), which is not a revert. Held: \(applied.short) stays "
                + "applied. Put a commit on top of \(applied.short) instead (git revert), or pass "
                + "--allow-history-rewrite (TIDE_ALLOW_HISTORY_REWRITE=1) if rewrites are expected")
    }
}
