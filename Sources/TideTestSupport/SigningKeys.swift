import Foundation
public import TideGit

/// Real signing keys for commit-signature tests: an SSH key pair with an `allowed_signers` file, and a GnuPG
/// home with a key and its exported public key. Nothing leaves the temporary directory.
public struct SigningKeys: Sendable {
    public let directory: String
    /// The SSH private key (its public key is next to it, `.pub`).
    public let sshKey: String
    /// `ssh-keygen`'s allowed_signers listing the SSH key as `principal`.
    public let allowedSigners: String
    public let principal: String

    /// Makes an ed25519 SSH key for `principal`.
    public init(in scratch: TemporaryDirectory, name: String = "tide", principal: String = "tide@example.com") throws {
        directory = scratch.appending("keys-\(name)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        sshKey = directory + "/id_ed25519"
        allowedSigners = directory + "/allowed_signers"
        self.principal = principal
        try Self.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", sshKey])
        let publicKey = try String(contentsOfFile: sshKey + ".pub", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try "\(principal) \(publicKey)\n".write(toFile: allowedSigners, atomically: true, encoding: .utf8)
    }

    /// Commits everything in `fixture` signed with this SSH key.
    @discardableResult
    public func commitSigned(_ fixture: GitFixture, _ message: String, files: [String: String]) throws -> ObjectID {
        for (path, contents) in files { try fixture.write(path, contents) }
        try fixture.git("add", "-A")
        try fixture.git(
            "-c", "gpg.format=ssh", "-c", "user.signingkey=\(sshKey)", "commit", "-q", "--no-verify", "-S", "-m",
            message)
        return try fixture.head()
    }

    static func run(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        let result = try runProcess(program, arguments, environment: environment)
        guard result.status == 0 else {
            throw FixtureError("\(program) \(arguments.joined(separator: " ")): \(result.standardError)")
        }
    }
}

/// A GnuPG home with one signing key (no passphrase) and its public key exported (armored), for `gpg` signature
/// tests. Its agent is started with its output discarded (a daemon holding a test's pipe would hang it), and
/// stopped by `stop()`.
public struct GPGKey: Sendable {
    public let home: String
    public let publicKey: String
    public let fingerprint: String

    public init(in scratch: TemporaryDirectory, name: String = "tide", user: String = "Tide <tide@example.com>") throws
    {
        home = scratch.appending("gnupg-\(name)")
        try FileManager.default.createDirectory(
            atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let agent = try BackgroundProcess("/usr/bin/gpgconf", ["--homedir", home, "--launch", "gpg-agent"])
        _ = agent.exitStatus
        for _ in 0..<200 where agent.isRunning { usleep(10_000) }
        let environment = ["GNUPGHOME": home]
        try SigningKeys.run(
            "/usr/bin/gpg",
            ["--batch", "--passphrase", "", "--quick-gen-key", user, "ed25519", "sign", "never"],
            environment: environment)
        let listed = try runProcess(
            "/usr/bin/gpg", ["--batch", "--with-colons", "--list-keys"], environment: environment)
        guard
            let line = listed.standardOutput.split(separator: "\n").first(where: { $0.hasPrefix("fpr:") }),
            let fingerprint = line.split(separator: ":", omittingEmptySubsequences: false).dropFirst(9).first
        else { throw FixtureError("no fingerprint in \(listed.standardOutput)") }
        self.fingerprint = String(fingerprint)
        publicKey = home + "/public.asc"
        let exported = try runProcess(
            "/usr/bin/gpg", ["--batch", "--armor", "--export", self.fingerprint], environment: environment)
        try exported.standardOutput.write(toFile: publicKey, atomically: true, encoding: .utf8)
    }

    /// Commits everything in `fixture` signed with this key.
    @discardableResult
    public func commitSigned(_ fixture: GitFixture, _ message: String, files: [String: String]) throws -> ObjectID {
        for (path, contents) in files { try fixture.write(path, contents) }
        try fixture.git("add", "-A")
        let result = try runProcess(
            GitFixture.gitPath,
            [
                "-c", "gpg.format=openpgp", "-c", "user.signingkey=\(fingerprint)", "commit", "-q", "--no-verify", "-S",
                "-m", message,
            ],
            in: fixture.workTree, environment: ["GNUPGHOME": home])
        guard result.status == 0 else { throw FixtureError("git commit -S: \(result.standardError)") }
        return try fixture.head()
    }

    public func stop() {
        _ = try? runProcess("/usr/bin/gpgconf", ["--homedir", home, "--kill", "all"])
    }
}
