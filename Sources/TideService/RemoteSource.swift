public import Foundation
public import TideEngine
import TideExecutors
public import TideGit
public import TideState

/// A remote config repo, mirrored into a bare repository of Tide's own. Every network operation runs in a child
/// `tide git-remote` process with a deadline (see `RemoteOperation`); a failing remote backs off exponentially,
/// capped at the poll interval, and the pass goes on with the last fetched revision.
///
/// What must never happen: a hung fetch holding up passes or the daemon's health; a secret in a message, a log
/// line or the state (`RemoteURL` carries none; credentials only go to the child's stdin); a force-push.
public actor RemoteSource: BranchPublisher {
    public let remote: RemoteURL
    public let mirrorPath: String
    public let credentials: RemoteCredentials
    /// Deadline of one fetch or push.
    public let timeout: Double
    /// The longest wait between two failed fetches.
    public let maximumBackoff: Double
    /// The `tide` binary that runs the child.
    public let executable: String
    let store: any LiveStateStore
    /// Whether fetches and pushes are recorded in the state (their status, `fetch.failed` events). A read-only
    /// verb's fetch is not: it must not change what the service reports.
    let records: Bool
    public private(set) var status: SourceStatus
    /// When a failed fetch may be tried again (nil: any time).
    public private(set) var retryAt: Date?
    /// "Now" for backoffs and the times recorded (a test clock in tests).
    let clock: any TideClock

    public init(
        remote: RemoteURL, mirrorPath: String, credentials: RemoteCredentials, branch: String?, timeout: Double,
        maximumBackoff: Double, executable: String, store: any LiveStateStore, records: Bool = true,
        clock: any TideClock = SystemClock()
    ) async {
        self.clock = clock
        self.records = records
        self.remote = remote
        self.mirrorPath = mirrorPath
        self.credentials = credentials
        self.timeout = timeout
        self.maximumBackoff = maximumBackoff
        self.executable = executable
        self.store = store
        var status = (try? await store.sourceStatus()) ?? SourceStatus(url: remote.redacted)
        if status.url != remote.redacted { status = SourceStatus(url: remote.redacted) }
        status.branch = branch ?? status.branch
        self.status = status
    }

    /// The branch fetched (the given one, or the remote's default once a fetch found it).
    public var branch: String? { status.branch }

    /// What a fetch did.
    public enum FetchOutcome: Sendable, Equatable {
        case fetched(ObjectID)
        /// Not tried: still backing off after failures, until the date.
        case backingOff(Date)
        case failed(String)
    }

    /// Fetches the branch into the mirror, unless backing off (`force`, for a webhook's push, tries anyway).
    public func fetch(force: Bool = false) async -> FetchOutcome {
        let now = clock.now()
        if !force, let retryAt, retryAt > now { return .backingOff(retryAt) }
        if let unchanged = localRemoteUnchanged() {
            // A file:// remote whose branch did not move: nothing to fetch, and no process to start for it.
            status.lastFetchAt = now
            status.lastFetchSuccessAt = now
            if let stored = lastPersisted, now.timeIntervalSince(stored) < Self.quietPersistInterval {
                return .fetched(unchanged)
            }
            await persist(events: [], fetch: true)
            return .fetched(unchanged)
        }
        let answer = await run(
            RemoteOperation(
                kind: .fetch, mirror: mirrorPath, remote: remote, branch: status.branch, credentials: credentials))
        status.lastFetchAt = now
        var events: [Event] = []
        let outcome: FetchOutcome
        if answer.status == .ok, let head = answer.head {
            if status.lastFetchError != nil {
                events.append(
                    Event(time: now, kind: .fetchRecovered, revision: head, message: "fetch from \(remote) works again")
                )
            }
            status.branch = answer.branch ?? status.branch
            status.fetchedRevision = head
            status.lastFetchSuccessAt = now
            status.lastFetchError = nil
            status.consecutiveFetchFailures = 0
            retryAt = nil
            outcome = .fetched(head)
        } else {
            let message = answer.message ?? "fetch failed"
            if status.lastFetchError != message {  // one event per change of reason, not one per poll
                events.append(Event(time: now, kind: .fetchFailed, message: "fetch from \(remote): \(message)"))
            }
            status.lastFetchError = message
            status.consecutiveFetchFailures += 1
            retryAt = now.addingTimeInterval(backoff(after: status.consecutiveFetchFailures))
            outcome = .failed(message)
        }
        await persist(events: events, fetch: true)
        return outcome
    }

    /// How often an unchanged poll of a file:// remote is written to the state (every poll would mean a write a
    /// second at `--interval 1s`); a change, a failure or a recovery is written at once.
    static let quietPersistInterval: Double = 30
    private var lastPersisted: Date?

    /// For a `file://` remote that was fetched fine last time: its branch head read in place, when it is still the
    /// head fetched (nil otherwise, and a fetch runs). Read from the ref files themselves, never by opening the
    /// repository here: its config is someone else's and may include a FIFO or a device, which would block this
    /// process (the fetch child opens it, under its deadline).
    private func localRemoteUnchanged() -> ObjectID? {
        guard remote.scheme == .file, status.lastFetchError == nil, let fetched = status.fetchedRevision,
            let branch = status.branch, let path = URL(string: remote.url)?.path,
            let head = LooseRef.read(repository: path, branch: branch), head == fetched
        else { return nil }
        return head
    }

    /// Seconds to wait after `failures` failed fetches in a row: 1, 2, 4, … capped at `maximumBackoff`.
    func backoff(after failures: Int) -> Double {
        min(maximumBackoff, pow(2, Double(min(failures - 1, 30))))
    }

    public func publish(
        branch: String, from parent: ObjectID, to commit: ObjectID, reason: String, deferrable: Bool
    ) async throws {
        let answer = await run(
            RemoteOperation(
                kind: .push, mirror: mirrorPath, remote: remote, branch: branch, credentials: credentials,
                commit: commit, expected: parent))
        let now = clock.now()
        status.lastPushAt = now
        switch answer.status {
        case .ok:
            status.lastPushError = nil
            status.fetchedRevision = commit
            await persist(events: [], fetch: false)
        case .rejected:
            let message = answer.message ?? "rejected"
            status.lastPushError = message
            await persist(
                events: [
                    Event(
                        time: now, kind: .pushRejected, revision: commit,
                        message: "\(reason): push of \(commit.short) to \(remote) \(branch) rejected; rebuilding "
                            + "on the new head: \(message)")
                ], fetch: false)
            // The fetch brings the local branch to the remote's head (it is forced), dropping Tide's commit.
            if case .failed(let why) = await fetch(force: true) {
                try? restore(branch, from: commit, to: parent)
                throw PublishFailed(message: "push rejected, and the fetch after it failed: \(why)")
            }
            // Still where Tide built on: the server refused the push itself (a protected branch, a hook).
            guard status.fetchedRevision != parent else {
                throw PublishFailed(message: "\(remote) refused the push of \(commit.short) to \(branch): \(message)")
            }
            throw BranchMoved(head: status.fetchedRevision, reason: message)
        case .failed:
            let message = answer.message ?? "push failed"
            status.lastPushError = message
            if deferrable {
                // Kept on the local branch: published when the remote answers again (see `publishPending`).
                await persist(
                    events: [
                        Event(
                            time: now, kind: .pushFailed, revision: commit,
                            message: "\(reason): push of \(commit.short) to \(remote) failed: \(message); kept "
                                + "unpublished, pushed when the remote answers")
                    ], fetch: false)
                throw PublishDeferred(
                    message: "push to \(remote) failed: \(message)", commit: commit, parent: parent)
            }
            try? restore(branch, from: commit, to: parent)
            await persist(
                events: [
                    Event(
                        time: now, kind: .pushFailed, revision: commit,
                        message: "\(reason): push of \(commit.short) to \(remote) failed: \(message)")
                ], fetch: false)
            throw PublishFailed(message: "push to \(remote) failed: \(message)")
        }
    }

    /// Records the fetch fields (or the push fields) of `status` over what is stored, keeping the others as another
    /// process (a CLI `tide promote --to` beside `tide run`) recorded them.
    private func persist(events: [Event], fetch: Bool) async {
        guard records else { return }
        var stored = (try? await store.sourceStatus()) ?? status
        if stored.url != status.url { stored = status }
        if fetch {
            stored.branch = status.branch
            stored.fetchedRevision = status.fetchedRevision
            stored.lastFetchAt = status.lastFetchAt
            stored.lastFetchSuccessAt = status.lastFetchSuccessAt
            stored.lastFetchError = status.lastFetchError
            stored.consecutiveFetchFailures = status.consecutiveFetchFailures
        } else {
            stored.lastPushAt = status.lastPushAt
            stored.lastPushError = status.lastPushError
            stored.fetchedRevision = status.fetchedRevision
        }
        status = stored
        try? await store.apply(StateWrite(events: events, sourceStatus: stored))
        lastPersisted = clock.now()
    }

    /// Puts the mirror's branch back where it was before Tide's commit, which the remote did not take.
    private func restore(_ branch: String, from commit: ObjectID, to parent: ObjectID) throws {
        let repository = try Repository.open(at: mirrorPath)
        _ = try repository.advance(branch: branch, from: commit, to: parent, reason: "push failed: undo")
    }

    private func run(_ operation: RemoteOperation) async -> RemoteOperation.Answer {
        let input: String
        do {
            input = String(decoding: try JSONEncoder().encode(operation), as: UTF8.self)
        } catch {
            return .init(status: .failed, message: "cannot encode the request: \(error)")
        }
        let verb = operation.kind == .fetch ? "fetch from" : "push to"
        let result = await BoundedProcess.run(
            executable, arguments: ["git-remote"], environment: ["TIDE_PARENT_PID": "\(getpid())"], input: input,
            timeout: timeout, outputLimit: 256 * 1024)
        switch result.termination {
        case .timedOut:
            return .init(
                status: .failed,
                message: "\(verb) \(remote) abandoned after \(Int(timeout)) s: the server did not answer in time")
        case .cancelled:
            return .init(status: .failed, message: "\(verb) \(remote) stopped: Tide is shutting down")
        case .couldNotStart(let why):
            return .init(status: .failed, message: "cannot start \(executable) git-remote: \(why)")
        case .signalled(let signal):
            return .init(status: .failed, message: "\(verb) \(remote): the git process died of signal \(signal)")
        case .exited:
            let line = result.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
            guard let answer = try? JSONDecoder().decode(RemoteOperation.Answer.self, from: Data(line.utf8)) else {
                let detail = result.standardError.trimmingCharacters(in: .whitespacesAndNewlines).suffix(300)
                return .init(status: .failed, message: "\(verb) \(remote): no answer from the git process: \(detail)")
            }
            return answer
        }
    }
}

/// A branch head read from a repository's files: `refs/heads/BRANCH`, else `packed-refs` — regular files only,
/// opened without blocking (a FIFO in their place answers nil, not a hang). Nil when it cannot be told this way
/// (a bare or non-bare layout it does not know, a symbolic ref): the caller then asks git.
enum LooseRef {
    static func read(repository path: String, branch: String) -> ObjectID? {
        // The git directory: `.git` of a work tree, else the repository itself when it is laid out as a bare one
        // (never a work tree's own files: a committed `refs/heads/main` there is content, not a ref).
        let manager = FileManager.default
        let directory =
            manager.fileExists(atPath: path + "/.git")
            ? path + "/.git"
            : manager.fileExists(atPath: path + "/HEAD") && manager.fileExists(atPath: path + "/objects") ? path : nil
        guard let directory, manager.fileExists(atPath: directory + "/objects") else { return nil }
        if let text = regularFile(directory + "/refs/heads/" + branch) {
            return ObjectID(hex: text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard let packed = regularFile(directory + "/packed-refs") else { return nil }
        let wanted = " refs/heads/" + branch
        for line in packed.split(separator: "\n") where line.hasSuffix(wanted) {
            return ObjectID(hex: String(line.prefix(40)))
        }
        return nil
    }

    /// The contents of `path` when it is a regular file of at most 16 MiB (nil otherwise).
    private static func regularFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return nil }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= 16 << 20,
            let data = try? handle.readToEnd()
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
