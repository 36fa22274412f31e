public import TideGit
import TideManifest

/// Publishes the commits Tide writes (a revert or pin after a rollback, a promotion, `tide rollback`) to where
/// the config repo really lives. A local repository needs none; a remote one pushes.
///
/// What must never happen: a force-push; a push that moves the remote branch from anything but the commit Tide
/// built on; a commit that stays on the local branch when the remote did not take it.
public protocol BranchPublisher: Sendable {
    /// `commit` is already on the local `branch`, moved there from `parent`. Make the remote's branch the same,
    /// moving it only from `parent`. When someone pushed meanwhile: bring the local branch to the remote's new
    /// head and throw `BranchMoved` (the caller rebuilds its commit there). On any other failure: put the local
    /// branch back on `parent` and throw — unless `deferrable` and the remote could not be reached: then the
    /// local branch keeps `commit` and `PublishDeferred` is thrown (the caller publishes it later).
    func publish(
        branch: String, from parent: ObjectID, to commit: ObjectID, reason: String, deferrable: Bool
    ) async throws
}

/// The remote could not be reached; the commit stays on the local branch, to be published when it answers.
public struct PublishDeferred: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let commit: ObjectID
    public let parent: ObjectID

    public init(message: String, commit: ObjectID, parent: ObjectID) {
        self.message = message
        self.commit = commit
        self.parent = parent
    }

    public var description: String { message }
}

/// The remote branch moved since Tide based a commit on it; the local branch now is the remote's.
public struct BranchMoved: Error, CustomStringConvertible, Sendable {
    public let head: ObjectID?
    public let reason: String

    public init(head: ObjectID?, reason: String) {
        self.head = head
        self.reason = reason
    }

    public var description: String { reason }
}

/// A push that failed for another reason than a moved branch (the remote is down, credentials were refused, the
/// server declined it); the local branch is back where it was.
public struct PublishFailed: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension BranchWriter {
    /// How many times a commit Tide writes is rebuilt on a branch someone else moved, before giving up.
    static let publishAttempts = 3

    /// Moves the tracked branch from `parent` to `commit` (compare-and-swap) and publishes it, running
    /// `beforePush` between the two (where a caller journals the push). Returns whether a checked-out work tree was
    /// brought along.
    func moveBranch(
        _ branch: String, from parent: ObjectID, to commit: ObjectID, reason: String, deferrable: Bool = false,
        beforePush: (() async throws -> Void)? = nil
    ) async throws -> Bool {
        // Tide never builds on a head it would not apply: a signed revert on top of an unsigned commit would carry
        // that commit's content past `--verify-commits`.
        do {
            try resolver.verifySignature(of: parent)
        } catch let error as ManifestError {
            throw EngineError.unverifiedParent(parent, error.diagnostics.first?.message ?? "not verified")
        }
        let synced = try repository.advance(branch: branch, from: parent, to: commit, reason: reason)
        try await beforePush?()
        try await publisher?.publish(
            branch: branch, from: parent, to: commit, reason: reason, deferrable: deferrable)
        return synced
    }

    /// Runs `write` (which reads the branch head itself) again when the remote branch moved under it, up to
    /// `publishAttempts` times in all. Writes are one at a time (targets of one pass run concurrently): each
    /// builds on the head the previous one published, and a failed push never takes another's commit with it.
    func rebuildingOnMove<T: Sendable>(_ write: () async throws -> T) async throws -> T {
        try await gitWrites.run {
            var attempt = 1
            while true {
                do {
                    return try await write()
                } catch let moved as BranchMoved where attempt < Self.publishAttempts {
                    _ = moved
                    attempt += 1
                }
            }
        }
    }
}

/// An async mutex: one body at a time, in arrival order, without blocking a thread while waiting.
public actor AsyncLock {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    func acquire() async {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
    }

    func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }

    /// Runs `body` holding the lock.
    public nonisolated func run<T>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }
}
