import Foundation
import TideExecutors
public import TideGit
public import TideManifest

/// Reading a revision's objects in another process first, so libgit2 meeting a corrupt object cannot take Tide
/// down or hang it.
///
/// Debian's libgit2 1.5 loops for ever on some truncated loose objects and overflows a buffer on some crafted
/// ones. Before a pass reads a new head in-process, a child (`tide git-check`) reads the same objects — the
/// commit, the trees under the manifest root, the blobs this process has not read yet, the recent history — under
/// a deadline. Only when it finished cleanly does the reconciler read them itself; objects are immutable, so what
/// the child could read, this process can too.
///
/// Must never happen: a head whose objects could not be read safely applied; a pass hanging on a corrupt object
/// (or holding the state lock while it does); a crash of the reader taking Tide down.
public protocol RevisionReadCheck: Sendable {
    /// nil when every object needed could be read; else what went wrong, naming the object when known.
    func check(commit: ObjectID, root: String, known: Set<ObjectID>) async -> String?
}

extension RevisionReadCheck {
    /// Throws the revision's rejection (a problem at `commit X`) when its objects cannot be read safely.
    public func requireReadable(commit: ObjectID, root: String, known: Set<ObjectID>) async throws(ManifestError) {
        if let failure = await check(commit: commit, root: root, known: known) {
            throw ManifestError(commit: commit, "the revision cannot be read safely: \(failure)")
        }
    }
}

extension ManifestError {
    /// A problem with a revision as a whole (not with one of its files), reported at `commit X`.
    public init(commit: ObjectID, _ message: String) {
        self.init(diagnostics: [Diagnostic(SourceLocation(file: "commit \(commit.short)", line: 1, column: 1), message)]
        )
    }
}

/// Runs `tide git-check` under a deadline.
public struct ChildReadCheck: RevisionReadCheck {
    public var repository: String
    public var executable: String
    public var timeout: Double

    public init(repository: String, executable: String, timeout: Double) {
        self.repository = repository
        self.executable = executable
        self.timeout = timeout
    }

    public func check(commit: ObjectID, root: String, known: Set<ObjectID>) async -> String? {
        let result = await BoundedProcess.run(
            executable,
            arguments: ["git-check", "--repository", repository, "--commit", commit.hex, "--root", root],
            environment: ["TIDE_PARENT_PID": "\(getpid())"], input: known.map(\.hex).joined(separator: "\n"),
            timeout: timeout)
        let last =
            result.standardError.split(separator: "\n").last(where: { $0.hasPrefix("reading ") })
            .map { String($0.dropFirst("reading ".count)) } ?? "the revision"
        switch result.termination {
        case .exited(0) where result.standardOutput.hasPrefix("ok"):
            return nil
        case .exited:
            let why = result.standardError.split(separator: "\n").last { !$0.hasPrefix("reading ") }
            return "reading \(last) failed: \(why.map(String.init) ?? "exit \(result.termination)")"
        case .signalled(let signal):
            return "corrupt object: the reader crashed (signal \(signal)) reading \(last)"
        case .timedOut:
            return "corrupt object: the reader did not finish within \(Int(timeout)) s reading \(last)"
        default:
            return "the reader could not run (\(result.termination))"
        }
    }
}
