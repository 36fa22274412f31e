import ArgumentParser
import Foundation
import TideGit
import TideManifest

/// Commit signatures: which commits may be applied (`--verify-commits`), and how the commits Tide writes are
/// signed so they pass the same check (`--signing-key`). The keys are the operator's, in files outside the config
/// repo: a repository never chooses the keys its own commits are checked against.
struct SigningOptions: ParsableArguments {
    @Option(
        name: .customLong("verify-commits"),
        help: ArgumentHelp(
            "Apply only heads signed by an allowed key: ssh (with --allowed-signers) or gpg (with --gpg-keyring) "
                + "($TIDE_VERIFY_COMMITS; default: not checked).", valueName: "ssh|gpg"))
    var verifyCommits: String?

    @Option(
        name: .customLong("allowed-signers"),
        help: ArgumentHelp(
            "ssh-keygen's allowed_signers file of the keys that may sign ($TIDE_ALLOWED_SIGNERS).", valueName: "file"))
    var allowedSigners: String?

    @Option(
        name: .customLong("gpg-keyring"),
        help: ArgumentHelp(
            "The public keys that may sign, a keyring or an export, armored or not ($TIDE_GPG_KEYRING).",
            valueName: "file"))
    var gpgKeyring: String?

    @Option(
        name: .customLong("signing-key"),
        help: ArgumentHelp(
            "Sign the commits Tide writes: an SSH private key file (ssh), or a GnuPG key id (gpg), in the format "
                + "--verify-commits names ($TIDE_SIGNING_KEY).", valueName: "file|id"))
    var signingKey: String?

    @Option(
        name: .customLong("gpg-home"),
        help: ArgumentHelp(
            "The GnuPG home holding the --signing-key secret key ($TIDE_GPG_HOME; default: gpg's own).",
            valueName: "dir"))
    var gpgHome: String?

    var mode: String? { verifyCommits ?? environment("TIDE_VERIFY_COMMITS") }
    var signers: String? { allowedSigners ?? environment("TIDE_ALLOWED_SIGNERS") }
    var keyring: String? { gpgKeyring ?? environment("TIDE_GPG_KEYRING") }
    var key: String? { signingKey ?? environment("TIDE_SIGNING_KEY") }
    var home: String? { gpgHome ?? environment("TIDE_GPG_HOME") }

    func validate(repository: String) throws {
        guard let mode else {
            if key != nil {
                throw ValidationError("--signing-key: say which format with --verify-commits ssh|gpg")
            }
            return
        }
        guard let parsed = SignatureMode(rawValue: mode) else {
            throw ValidationError("--verify-commits: '\(mode)' is not ssh or gpg")
        }
        let (flag, file) = parsed == .ssh ? ("--allowed-signers", signers) : ("--gpg-keyring", keyring)
        guard let file else { throw ValidationError("--verify-commits \(mode) needs \(flag) FILE") }
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw ValidationError("\(flag): cannot read \(file)")
        }
        if Self.isInside(file, repository) {
            throw ValidationError(
                "\(flag): \(file) is inside the config repo; the keys must come from outside it (a repository "
                    + "never chooses the keys its commits are checked against)")
        }
        if parsed == .ssh, let key, !FileManager.default.isReadableFile(atPath: key) {
            throw ValidationError("--signing-key: cannot read \(key)")
        }
    }

    func verification() throws -> CommitVerification? {
        guard let mode, let parsed = SignatureMode(rawValue: mode) else { return nil }
        return CommitVerification(mode: parsed, keys: (parsed == .ssh ? signers : keyring) ?? "")
    }

    func signer() throws -> CommitSigner? {
        guard let key, let mode, let parsed = SignatureMode(rawValue: mode) else { return nil }
        return CommitSigner(mode: parsed, key: key, gpgHome: home)
    }

    /// Whether `file` (after symlinks) is inside the local repository `repository`.
    static func isInside(_ file: String, _ repository: String) -> Bool {
        guard !repository.contains("://") else { return false }
        let root = Paths.resolved(repository)
        return Paths.resolved(file).hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }
}
