import Foundation
public import TideGit

/// One network operation on a remote config repo, run by a child `tide git-remote` process so that a server that
/// never answers can be abandoned at a deadline (libgit2 has no timeout of its own) and a libgit2 crash takes
/// down only the child. The request goes to the child's stdin (credentials never appear on a command line or in
/// its environment); the child answers one JSON line on stdout.
public struct RemoteOperation: Codable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case fetch, push
    }

    public var kind: Kind
    public var mirror: String
    public var remote: RemoteURL
    /// The branch to fetch (nil: the remote's default) or push.
    public var branch: String?
    public var credentials: RemoteCredentials
    /// Push: the commit to publish, and the remote head it must replace.
    public var commit: ObjectID?
    public var expected: ObjectID?

    public init(
        kind: Kind, mirror: String, remote: RemoteURL, branch: String?, credentials: RemoteCredentials,
        commit: ObjectID? = nil, expected: ObjectID? = nil
    ) {
        self.kind = kind
        self.mirror = mirror
        self.remote = remote
        self.branch = branch
        self.credentials = credentials
        self.commit = commit
        self.expected = expected
    }

    /// The child's answer.
    public struct Answer: Codable, Sendable {
        public enum Status: String, Codable, Sendable {
            case ok, failed, rejected
        }
        public var status: Status
        public var branch: String?
        public var head: ObjectID?
        public var message: String?

        public init(status: Status, branch: String? = nil, head: ObjectID? = nil, message: String? = nil) {
            self.status = status
            self.branch = branch
            self.head = head
            self.message = message
        }
    }

    /// Carries the operation out in this process (the child's side).
    public func perform() -> Answer {
        do {
            let repository = try Repository.openMirror(at: mirror)
            // One fetch or push at a time on a mirror, whichever process runs it (tide run, a CLI reconcile).
            let lock = open((mirror as NSString).appendingPathComponent("tide.lock"), O_CREAT | O_RDWR, 0o644)
            defer { if lock >= 0 { close(lock) } }
            if lock >= 0 { _ = flock(lock, LOCK_EX) }
            Self.removeAbandonedFiles(in: mirror)
            let service = kind == .fetch ? "git-upload-pack" : "git-receive-pack"
            if let refusal = RedirectCheck.refusal(for: remote, service: service, credentials: credentials) {
                return Answer(status: .failed, message: refusal)
            }
            switch kind {
            case .fetch:
                let (branch, head) = try repository.fetch(from: remote, branch: branch, credentials: credentials)
                return Answer(status: .ok, branch: branch, head: head)
            case .push:
                guard let commit, let expected, let branch else {
                    return Answer(status: .failed, message: "push: no commit, expected head or branch")
                }
                try repository.push(commit, to: remote, branch: branch, expected: expected, credentials: credentials)
                return Answer(status: .ok, branch: branch, head: commit)
            }
        } catch let rejected as PushRejected {
            return Answer(status: .rejected, branch: branch, head: rejected.remoteHead, message: rejected.description)
        } catch {
            return Answer(status: .failed, message: "\(error)")
        }
    }

    /// What fetches abandoned at their deadline left behind (a killed child never cleans up): half-written packs
    /// (libgit2 names them `pack_git2_*` until they are whole), a pack whose index never came, and lock files of
    /// refs it was updating, which would make every later fetch fail. Run holding the mirror's lock, so no fetch
    /// under way loses its files; a lock file younger than a minute may be Tide's own ref update and is left.
    static func removeAbandonedFiles(in mirror: String) {
        let manager = FileManager.default
        let packs = (mirror as NSString).appendingPathComponent("objects/pack")
        let names = Set((try? manager.contentsOfDirectory(atPath: packs)) ?? [])
        let stale = Date().addingTimeInterval(-60)
        func old(_ path: String) -> Bool {
            ((try? manager.attributesOfItem(atPath: path))?[.modificationDate] as? Date).map { $0 < stale } ?? false
        }
        for name in names {
            let path = (packs as NSString).appendingPathComponent(name)
            let unindexed = name.hasSuffix(".pack") && !names.contains(String(name.dropLast(5)) + ".idx")
            if name.hasPrefix("pack_git2_") || (unindexed && old(path)) { try? manager.removeItem(atPath: path) }
        }
        let locks = ["HEAD.lock", "packed-refs.lock", "config.lock", "FETCH_HEAD.lock"].map {
            (mirror as NSString).appendingPathComponent($0)
        }
        let refs = (mirror as NSString).appendingPathComponent("refs")
        let refLocks = (manager.enumerator(atPath: refs)?.allObjects as? [String] ?? []).filter {
            $0.hasSuffix(".lock")
        }
        .map { (refs as NSString).appendingPathComponent($0) }
        for lock in locks + refLocks where old(lock) { try? manager.removeItem(atPath: lock) }
    }
}
