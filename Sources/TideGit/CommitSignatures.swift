internal import CLibgit2
import Foundation

/// How commit signatures are made and checked: SSH signatures (`ssh-keygen -Y`, git's `gpg.format=ssh`) or
/// OpenPGP (`gpg`).
public enum SignatureMode: String, Sendable, CaseIterable {
    case ssh, gpg

    static func of(_ signature: String) -> SignatureMode? {
        if signature.hasPrefix("-----BEGIN SSH SIGNATURE-----") { return .ssh }
        if signature.hasPrefix("-----BEGIN PGP SIGNATURE-----") { return .gpg }
        return nil
    }
}

/// Which commits may be applied: only those signed by a key the operator allowed, in a file outside the config
/// repo (the repo never chooses its own keys).
///
/// Must never happen: an unsigned commit, a commit signed by a key not in the file, a signature that does not
/// match the commit's content, or a commit signed in the other format, being taken as verified.
public struct CommitVerification: Sendable, Hashable {
    public var mode: SignatureMode
    /// SSH: an `allowed_signers` file (`ssh-keygen(1)`, ALLOWED SIGNERS). GPG: a keyring or exported public keys
    /// (armored or binary).
    public var keys: String

    public init(mode: SignatureMode, keys: String) {
        self.mode = mode
        self.keys = keys
    }

    /// Who signed `commit` (a principal and key fingerprint), or why it is refused.
    public func verify(_ commit: ObjectID, in repository: Repository) -> Result<String, VerificationFailure> {
        let signed: Repository.SignedCommit
        do {
            guard let found = try repository.signedCommit(commit) else {
                return .failure(VerificationFailure(description: "commit \(commit.short) is not signed"))
            }
            signed = found
        } catch {
            return .failure(VerificationFailure(description: "cannot read the signature of \(commit.short): \(error)"))
        }
        guard SignatureMode.of(signed.signature) == mode else {
            return .failure(
                VerificationFailure(
                    description: "commit \(commit.short) is not signed with \(mode.rawValue) (Tide verifies "
                        + "\(mode.rawValue) signatures)"))
        }
        guard FileManager.default.isReadableFile(atPath: keys) else {
            return .failure(VerificationFailure(description: "cannot read the allowed keys \(keys)"))
        }
        do {
            switch mode {
            case .ssh: return try verifySSH(signed, commit, in: repository)
            case .gpg: return try verifyGPG(signed, commit)
            }
        } catch {
            return .failure(VerificationFailure(description: "cannot verify \(commit.short): \(error)"))
        }
    }

    private func verifySSH(
        _ signed: Repository.SignedCommit, _ commit: ObjectID, in repository: Repository
    ) throws -> Result<
        String, VerificationFailure
    > {
        let files = try TemporaryFiles()
        defer { files.remove() }
        let signature = try files.write("signature", Array(signed.signature.utf8))
        let at = "-Overify-time=" + Self.sshTime(try Self.verificationTime(of: commit, in: repository))
        let found = try SignatureTool.run("ssh-keygen", ["-Y", "find-principals", "-s", signature, "-f", keys, at])
        guard found.status == 0, let principal = found.output.split(separator: "\n").first.map(String.init) else {
            return .failure(
                VerificationFailure(description: "commit \(commit.short) is signed by a key not in \(keys)"))
        }
        let checked = try SignatureTool.run(
            "ssh-keygen", ["-Y", "verify", "-f", keys, "-I", principal, "-n", "git", "-s", signature, at],
            input: signed.data)
        guard checked.status == 0 else {
            let why = checked.error.split(separator: "\n").first.map(String.init) ?? "bad signature"
            return .failure(
                VerificationFailure(description: "commit \(commit.short): the signature does not verify (\(why))"))
        }
        let key = checked.output.split(separator: " ").last.map { String($0).trimmingCharacters(in: .newlines) }
        return .success("\(principal) (\(key ?? "ssh key"))")
    }

    /// When an SSH signature is checked — a certificate's validity, an allowed signer's `valid-after` and
    /// `valid-before`: at the commit's committer time, as `git verify-commit` checks it, so a certificate that
    /// expires later does not make the commits it signed stop verifying (and Tide hold everything). The time is
    /// signed with the commit, but its signer chose it: it is never taken as earlier than a parent's, so a
    /// commit cannot claim a validity window that ended before the commit it builds on was made.
    static func verificationTime(of commit: ObjectID, in repository: Repository) throws -> Date {
        let read = try repository.commit(commit)
        let parents = read.parents.compactMap { try? repository.commit($0).committer.time }
        return ([read.committer.time] + parents).max() ?? read.committer.time
    }

    /// `ssh-keygen -O verify-time=`'s form: UTC, to the second.
    static func sshTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMddHHmmss"
        return formatter.string(from: date) + "Z"
    }

    private func verifyGPG(_ signed: Repository.SignedCommit, _ commit: ObjectID) throws -> Result<
        String, VerificationFailure
    > {
        let files = try TemporaryFiles()
        defer { files.remove() }
        let home = files.path("home")
        try FileManager.default.createDirectory(
            atPath: home, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        // A home of its own: only the keys in `keys` exist for this check, whatever the user's keyring holds.
        let base = ["--batch", "--no-autostart", "--homedir", home]
        let imported = try SignatureTool.run("gpg", base + ["--import", keys])
        guard imported.status == 0 else {
            return .failure(VerificationFailure(description: "cannot read the keys in \(keys)"))
        }
        let signature = try files.write("signature", Array(signed.signature.utf8))
        let data = try files.write("data", signed.data)
        let checked = try SignatureTool.run("gpg", base + ["--status-fd", "1", "--verify", signature, data])
        let status = checked.output.split(separator: "\n").map(String.init)
        let refusals = ["BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "NO_PUBKEY"]
        let refused = status.contains { line in refusals.contains { line.hasPrefix("[GNUPG:] \($0) ") } }
        guard checked.status == 0, !refused, status.contains(where: { $0.hasPrefix("[GNUPG:] GOODSIG ") }),
            let valid = status.first(where: { $0.hasPrefix("[GNUPG:] VALIDSIG ") })
        else {
            let unknown = status.contains { $0.hasPrefix("[GNUPG:] NO_PUBKEY ") || $0.hasPrefix("[GNUPG:] ERRSIG ") }
            return .failure(
                VerificationFailure(
                    description: unknown
                        ? "commit \(commit.short) is signed by a key not in \(keys)"
                        : "commit \(commit.short): the signature does not verify"))
        }
        let fingerprint = valid.split(separator: " ").dropFirst(2).first.map(String.init) ?? "?"
        let who = status.first { $0.hasPrefix("[GNUPG:] GOODSIG ") }?.split(separator: " ").dropFirst(3)
            .joined(separator: " ")
        return .success("\(who ?? "") (\(fingerprint))")
    }
}

public struct VerificationFailure: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
}

/// Signs the commits Tide writes (reverts, promotions, pins), so they pass the same verification.
public struct CommitSigner: Sendable, Hashable {
    public var mode: SignatureMode
    /// SSH: the private key file. GPG: the key id (or fingerprint, or user id), from the default GnuPG home or
    /// `gpgHome`.
    public var key: String
    public var gpgHome: String?

    public init(mode: SignatureMode, key: String, gpgHome: String? = nil) {
        self.mode = mode
        self.key = key
        self.gpgHome = gpgHome
    }

    /// The armored signature of `buffer` (a commit object's text).
    func sign(_ buffer: [UInt8]) throws -> String {
        let output: SignatureTool.Output
        switch mode {
        case .ssh:
            output = try SignatureTool.run("ssh-keygen", ["-Y", "sign", "-n", "git", "-f", key, "-q"], input: buffer)
        case .gpg:
            let home = gpgHome.map { ["--homedir", $0] } ?? []
            output = try SignatureTool.run(
                "gpg",
                ["--batch", "--pinentry-mode", "error"] + home + ["--local-user", key, "--detach-sign", "--armor"],
                input: buffer)
        }
        guard output.status == 0, SignatureMode.of(output.output) == mode else {
            let why = output.error.split(separator: "\n").first.map(String.init) ?? "exit \(output.status)"
            throw SignatureTool.Failure(description: "cannot sign the commit with \(mode.rawValue) key \(key): \(why)")
        }
        return output.output
    }
}

extension Repository {
    /// A signed commit's signature and the exact bytes it signs.
    public struct SignedCommit: Sendable {
        public var signature: String
        public var data: [UInt8]
    }

    /// The signature of `commit` (the `gpgsig` header, SSH or OpenPGP), or nil when it is unsigned.
    public func signedCommit(_ commit: ObjectID) throws -> SignedCommit? {
        try withHandle { repo in
            var signature = git_buf()
            var data = git_buf()
            defer {
                git_buf_dispose(&signature)
                git_buf_dispose(&data)
            }
            var oid = commit.oid
            let rc = git_commit_extract_signature(&signature, &data, repo, &oid, nil)
            if rc == GIT_ENOTFOUND.rawValue { return nil }
            try check(rc, "read the signature of \(commit.short)")
            let text = String(
                decoding: UnsafeRawBufferPointer(start: signature.ptr, count: signature.size), as: UTF8.self)
            let bytes = Array(UnsafeRawBufferPointer(start: data.ptr, count: data.size))
            return SignedCommit(signature: text, data: bytes)
        }
    }
}
