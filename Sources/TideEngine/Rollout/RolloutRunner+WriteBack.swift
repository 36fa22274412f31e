import Foundation
import TideGit
import TideManifest
import TideState

/// Writing a finished rollback back to git (a revert or a pin), journaled like a step: the rollback's outcome is
/// recorded with the write-back it owes; the commit, once made, before it is pushed; what came of the push last.
///
/// What must never happen: a push that went through while Tide was stopped taken for a new revision or left
/// without its `revert.committed` (the target's revision follows it, as after a push Tide saw through); a commit
/// recorded as written that the remote never took; the rollback's executor steps run again because the push was
/// interrupted; a write-back owed for ever (one that fails in the pass is said once and dropped, as before).
extension RolloutRunner {
    /// Performs the write-back `live` owes (`FailedAttempt.writeBack`) and records what came of it; the target's
    /// revision follows what git now says. Returns the words for the outcome's message.
    func writeBack(_ live: LiveTarget) async throws -> String {
        guard let failed = live.failed, let owed = failed.writeBack else { return "" }
        guard let stable = live.version else {
            // Nothing ran before the failed version: there is no stable one for git to say.
            var state = live
            state.failed?.writeBack = nil
            try await journal.commit(StateWrite(targets: [state]))
            return ""
        }
        let id = live.id
        let journal = self.journal
        // The commit is journaled before it leaves: a crash mid-push is settled by `settleWriteBacks`.
        let announce: BranchWriter.PushHook = { commit, parent, kind, words in
            var pushing = live
            pushing.failed?.writeBack?.commit = commit
            pushing.failed?.writeBack?.parent = parent
            pushing.failed?.writeBack?.kind = kind
            pushing.failed?.writeBack?.words = words
            try await journal.commit(StateWrite(targets: [pushing]))
        }
        var state = live
        state.failed?.writeBack = nil
        let now = clock.now()
        var events: [Event] = []
        var words: String
        do {
            switch try await branchWriter.writeBack(
                target: id, file: owed.file, failed: failed, stable: stable, stableDigest: live.configDigest,
                stableRevision: live.revision, reason: owed.reason, beforePush: announce)
            {
            case .written(let commit, let kind, let did):
                // Git now says what runs: the next change is classified against this commit.
                state.revision = commit
                events.append(revertCommitted(id, failed: failed, stable: stable, commit: commit, kind: kind, did, now))
                words = "; \(did)"
            case .matches(let head):
                state.revision = head
                words = ""
            case .skipped(let why), .deferred(_, _, _, _, let why):
                // (An automatic write-back is never deferred: a failed push leaves the branch as it was.)
                words = "; nothing written back to git: \(why)"
            }
        } catch {
            words = "; could not write the rollback back to git: \(error)"
        }
        if events.isEmpty && !words.isEmpty {
            events.append(
                Event(
                    time: now, kind: .reconcileError, target: id, revision: failed.revision,
                    message: String(words.dropFirst(2))))
        }
        state.updatedAt = now
        try await journal.commit(StateWrite(targets: [state], events: events))
        return words
    }

    /// The write-backs a stopped Tide still owed (it stopped between a rollback and the end of its push): a push
    /// that went through is recorded as Tide would have recorded it; one that did not is written again. Nothing is
    /// decided while the remote does not answer. Returns whether anything was settled.
    func settleWriteBacks(_ live: [LiveTarget]) async throws -> Bool {
        var settled = false
        for candidate in live where candidate.phase == .rolledBack && candidate.failed?.writeBack != nil {
            // Holding the target (an operator's abort in this process may be pushing its write-back right now),
            // and as it is recorded then.
            settled =
                try await targetLocks.with(candidate.id) {
                    guard let target = try await store.liveTarget(candidate.id) else { return false }
                    return try await settleWriteBack(target)
                } || settled
        }
        return settled
    }

    /// One target's owed write-back, when it still owes one (see `settleWriteBacks`).
    private func settleWriteBack(_ target: LiveTarget) async throws -> Bool {
        guard target.phase == .rolledBack, let failed = target.failed, let owed = failed.writeBack else { return false }
        guard let stable = target.version else {
            _ = try await writeBack(target)  // clears it: nothing to write
            return true
        }
        guard let landed = try await pushLanded(owed) else { return false }
        guard landed, let commit = owed.commit else {
            _ = try await writeBack(target)
            return true
        }
        var state = target
        state.failed?.writeBack = nil
        state.revision = commit
        let now = clock.now()
        state.updatedAt = now
        let did = (owed.words ?? "wrote \(commit.short)") + " (pushed while Tide stopped; recorded at its restart)"
        try await journal.commit(
            StateWrite(
                targets: [state],
                events: [
                    revertCommitted(
                        target.id, failed: failed, stable: stable, commit: commit, kind: owed.kind ?? "revert",
                        did, now)
                ]))
        return true
    }

    /// Whether the branch holds the write-back's commit (nil: cannot tell while fetches from the remote fail). A
    /// commit the remote does not hold is taken off Tide's local branch, where the stopped push left it.
    private func pushLanded(_ owed: OwedWriteBack) async throws -> Bool? {
        let branch = try trackedBranch()
        let local = try repository.resolveCommit(branch: branch)
        var head = local
        if publisher != nil {
            guard let source = try await store.sourceStatus(), source.lastFetchError == nil,
                let fetched = source.fetchedRevision
            else { return nil }
            head = fetched
        }
        guard let commit = owed.commit else { return false }
        if head == commit || (try? repository.isAncestor(commit, of: head)) == true { return true }
        if local == commit, local != head {
            _ = try repository.advance(branch: branch, from: local, to: head, reason: "push not taken: undo")
        }
        return false
    }

    private func revertCommitted(
        _ id: TargetID, failed: FailedAttempt, stable: String, commit: ObjectID, kind: String, _ words: String,
        _ now: Date
    ) -> Event {
        Event(
            time: now, kind: .revertCommitted, target: id, revision: commit, version: stable,
            previousVersion: failed.version, classification: .rollback, message: words,
            details: .object(["writeBack": .string(kind), "commit": .string(commit.hex)]))
    }
}
