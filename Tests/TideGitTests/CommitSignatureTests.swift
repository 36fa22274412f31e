import Foundation
import Testing
import TideGit
import TideTestSupport

/// Commit signatures through real `ssh-keygen` and `gpg`: commits git signed, commits Tide signed, and every
/// way a commit can fail the check.
@Suite("TideGit: commit signatures, SSH and GPG")
struct CommitSignatureTests {
    static let file = ["a.yaml": "a: 1\n"]

    @Test("SSH: a commit signed by an allowed key verifies; unsigned, another key, altered content and gpg do not")
    func ssh() throws {
        let scratch = try TemporaryDirectory("tide-sign")
        let keys = try SigningKeys(in: scratch)
        let stranger = try SigningKeys(in: scratch, name: "stranger", principal: "stranger@example.com")
        let fixture = try GitFixture()
        let verification = CommitVerification(mode: .ssh, keys: keys.allowedSigners)
        let repository = try Repository.open(at: fixture.repoPath)

        let signed = try keys.commitSigned(fixture, "signed", files: Self.file)
        let verified = try verification.verify(signed, in: repository).get()
        #expect(verified.hasPrefix("tide@example.com"), "\(verified)")

        let unsigned = try fixture.commit("unsigned", files: ["b.yaml": "b: 1\n"])
        #expect(verification.verify(unsigned, in: repository).failure?.contains("is not signed") == true)

        let foreign = try stranger.commitSigned(fixture, "foreign", files: ["c.yaml": "c: 1\n"])
        #expect(
            verification.verify(foreign, in: repository).failure?.contains("signed by a key not in") == true,
            "\(verification.verify(foreign, in: repository))")

        // The same signature on different content: a commit object rewritten by hand.
        let text = try fixture.git("cat-file", "commit", signed.hex).replacingOccurrences(of: "signed", with: "forged")
        let forgedPath = scratch.appending("forged")
        try text.write(toFile: forgedPath, atomically: true, encoding: .utf8)
        let forgedHex = try fixture.git("hash-object", "-t", "commit", "-w", forgedPath)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let forged = try #require(ObjectID(hex: forgedHex))
        #expect(
            verification.verify(forged, in: repository).failure?.contains("does not verify") == true,
            "\(verification.verify(forged, in: repository))")

        // A key file that cannot be read verifies nothing.
        let missing = CommitVerification(mode: .ssh, keys: scratch.appending("nope"))
        #expect(missing.verify(signed, in: repository).failure?.contains("cannot read") == true)
        // An SSH-signed commit under gpg verification is refused for its format.
        let gpg = CommitVerification(mode: .gpg, keys: keys.allowedSigners)
        #expect(gpg.verify(signed, in: repository).failure?.contains("is not signed with gpg") == true)
    }

    @Test(
        "SSH certificates are checked at the commit's committer time, as git verify-commit does: one that expired after signing still verifies; a commit dated before its parent gets no older window (hardening round two, 8)"
    )
    func certificateExpiry() throws {
        let scratch = try TemporaryDirectory("tide-sign")
        let ca = scratch.appending("ca")
        let user = scratch.appending("user")
        for key in [ca, user] {
            #expect(try runProcess("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]).status == 0)
        }
        // Valid for one day, eleven months ago.
        let issued = try runProcess(
            "/usr/bin/ssh-keygen",
            [
                "-q", "-s", ca, "-I", "tide-user", "-n", "tide@example.com", "-V", "20260101000000Z:20260102000000Z",
                user + ".pub",
            ])
        #expect(issued.status == 0, "\(issued.standardError)")
        let allowed = scratch.appending("allowed_signers")
        let authority = try String(contentsOfFile: ca + ".pub", encoding: .utf8)
        try "tide@example.com cert-authority \(authority)".write(toFile: allowed, atomically: true, encoding: .utf8)
        let fixture = try GitFixture()
        let repository = try Repository.open(at: fixture.repoPath)
        let verification = CommitVerification(mode: .ssh, keys: allowed)
        func commitSigned(_ message: String, at date: String) throws -> ObjectID {
            try fixture.write(message + ".yaml", "a: 1\n")
            let signing = try runProcess(
                "/usr/bin/ssh-agent",
                [
                    "/bin/sh", "-c",
                    "ssh-add -q \"$KEY\" && git add -A && git -c gpg.format=ssh -c user.signingkey=\"$KEY-cert.pub\" "
                        + "commit -q --no-verify -S -m \"$MESSAGE\"",
                ], in: fixture.workTree,
                environment: [
                    "KEY": user, "MESSAGE": message, "GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date,
                    "GIT_CONFIG_NOSYSTEM": "1",
                ])
            #expect(signing.status == 0, "\(signing.standardError)")
            return try fixture.head()
        }
        // 2025-12-31, before the certificate.
        _ = try fixture.commit("base", files: Self.file, date: Date(timeIntervalSince1970: 1_767_139_200))
        let signed = try commitSigned("signed", at: "2026-01-01T12:00:00Z")
        #expect(
            (try? verification.verify(signed, in: repository).get())?.hasPrefix("tide@example.com") == true,
            "\(verification.verify(signed, in: repository))")

        // On top of a commit made after the certificate expired, a commit claiming an older date is checked at
        // its parent's time: refused.
        _ = try fixture.commit("later", files: ["b.yaml": "b: 1\n"], date: Date(timeIntervalSince1970: 1_767_398_400))
        let backdated = try commitSigned("backdated", at: "2026-01-01T13:00:00Z")
        #expect(verification.verify(backdated, in: repository).failure != nil)
    }

    @Test("GPG: a commit signed by a key in the keyring verifies; unsigned and another key do not")
    func gpg() throws {
        let scratch = try TemporaryDirectory("tide-sign")
        let key = try GPGKey(in: scratch)
        let stranger = try GPGKey(in: scratch, name: "stranger", user: "Stranger <stranger@example.com>")
        defer {
            key.stop()
            stranger.stop()
        }
        let fixture = try GitFixture()
        let repository = try Repository.open(at: fixture.repoPath)
        let verification = CommitVerification(mode: .gpg, keys: key.publicKey)

        let signed = try key.commitSigned(fixture, "signed", files: Self.file)
        let verified = try verification.verify(signed, in: repository).get()
        #expect(verified.contains(key.fingerprint), "\(verified)")

        let unsigned = try fixture.commit("unsigned", files: ["b.yaml": "b: 1\n"])
        #expect(verification.verify(unsigned, in: repository).failure?.contains("is not signed") == true)
        let foreign = try stranger.commitSigned(fixture, "foreign", files: ["c.yaml": "c: 1\n"])
        #expect(
            verification.verify(foreign, in: repository).failure?.contains("signed by a key not in") == true,
            "\(verification.verify(foreign, in: repository))")
    }

    @Test("commits Tide writes are signed with its key and pass the same check (SSH and GPG)")
    func tideSigns() throws {
        let scratch = try TemporaryDirectory("tide-sign")
        let keys = try SigningKeys(in: scratch)
        let gpgKey = try GPGKey(in: scratch)
        defer { gpgKey.stop() }
        let fixture = try GitFixture()
        _ = try fixture.commit("first", files: Self.file)
        let second = try fixture.commit("second", files: ["b.yaml": "b: 1\n"])
        let repository = try Repository.open(at: fixture.repoPath)

        repository.signer = CommitSigner(mode: .ssh, key: keys.sshKey)
        let bySSH = try repository.makeFileCommit(
            path: "a.yaml", contents: Array("a: 2\n".utf8), parent: second, message: "pin a")
        let ssh = CommitVerification(mode: .ssh, keys: keys.allowedSigners)
        #expect((try? ssh.verify(bySSH, in: repository).get()) != nil, "\(ssh.verify(bySSH, in: repository))")
        // git itself agrees.
        let gitSays = try runProcess(
            GitFixture.gitPath,
            ["-c", "gpg.ssh.allowedSignersFile=\(keys.allowedSigners)", "verify-commit", bySSH.hex],
            in: fixture.workTree)
        #expect(gitSays.status == 0, "\(gitSays.standardError)")

        repository.signer = CommitSigner(mode: .gpg, key: gpgKey.fingerprint, gpgHome: gpgKey.home)
        let byGPG = try #require(try repository.makeRevertCommit([second], parent: bySSH, message: "revert second"))
        let gpg = CommitVerification(mode: .gpg, keys: gpgKey.publicKey)
        #expect((try? gpg.verify(byGPG, in: repository).get()) != nil, "\(gpg.verify(byGPG, in: repository))")

        // A key that cannot sign: the commit is not written.
        repository.signer = CommitSigner(mode: .ssh, key: scratch.appending("missing-key"))
        #expect(throws: GitError.self) {
            try repository.makeFileCommit(path: "a.yaml", contents: Array("a: 3\n".utf8), parent: bySSH, message: "x")
        }
    }
}

extension Result {
    var failure: String? {
        if case .failure(let error) = self { return "\(error)" }
        return nil
    }
}
