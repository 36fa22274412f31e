import Crypto
import Foundation
import TideGit
import TideManifest

/// Commit signatures: with `--verify-commits`, a head that is not signed by an allowed key is rejected like an
/// invalid revision (the last good one stays applied, `revision.rejected`, the reason in `tide status`).
///
/// Must never happen: a head applied whose signature did not verify against the operator's key file; a verified
/// result reused after that file changed.
extension RevisionResolver {
    func verifySignature(of commit: ObjectID) throws {
        guard let verification else { return }
        let key = "\(commit)|\(Self.fileStamp(verification.keys))"
        if context.memory.withLock({ $0.verifiedCommits[key] }) != nil { return }
        switch verification.verify(commit, in: repository) {
        case .success(let signer):
            context.memory.withLock { $0.verifiedCommits[key] = signer }
        case .failure(let failure):
            throw ManifestError(
                commit: commit,
                "\(failure.description); Tide applies only commits signed by a key in "
                    + "\(verification.keys) (--verify-commits \(verification.mode.rawValue))")
        }
    }

    /// What the key file holds now, as a digest of its contents (read through symlinks: a Kubernetes ConfigMap or
    /// Secret mount swaps a `..data` link, and `cp -p` keeps size and time): any change checks commits again.
    static func fileStamp(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "missing" }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

extension RevisionResolver {
    /// With a read check: `commit`'s objects are read by a child process first (once per commit); a failure
    /// rejects the revision like an invalid one, naming what could not be read.
    func checkReadable(_ commit: ObjectID) async throws {
        guard let readCheck, !context.memory.withLock({ $0.readableCommits.contains(commit) }) else { return }
        try await readCheck.requireReadable(commit: commit, root: root, known: loader.cachedBlobs)
        context.memory.withLock { _ = $0.readableCommits.insert(commit) }
    }
}
