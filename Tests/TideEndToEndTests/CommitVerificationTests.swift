import Foundation
import Testing
import TideGit
import TideTestSupport

/// `--verify-commits`: only heads signed by an allowed key are applied; anything else is rejected like an invalid
/// revision (the last good one stays, `revision.rejected`, the reason in status). Commits Tide writes are signed
/// with `--signing-key` and pass the same check.
@Suite("End to end: commit signature verification")
struct CommitVerificationTests {
    @Test(
        "a force-push back to an older signed commit is held, not deployed as a ROLLBACK past the approval gate (hardening round two, 7)"
    )
    func forcePushBack() async throws {
        let repo = try ConfigRepo()
        let keys = try SigningKeys(in: repo.scratch)
        let verify = ["--verify-commits", "ssh", "--allowed-signers", keys.allowedSigners]
        let old = try keys.commitSigned(
            repo.fixture, "api 1.0.1 signed", files: ["api.yaml": ConfigRepo.service("api", "1.0.1")])
        #expect(try await repo.tide("reconcile", extra: verify).status == 0)
        try keys.commitSigned(repo.fixture, "api 1.0.2 signed", files: ["api.yaml": ConfigRepo.service("api", "1.0.2")])
        #expect(try await repo.tide("reconcile", extra: verify).status == 0)
        let deployed = repo.calls()

        // Someone without the key moves the branch back to the older, validly signed commit.
        try await repo.fixture.git("reset", "-q", "--hard", old.hex)
        let moved = try await repo.tide("reconcile", extra: verify)
        #expect(moved.combined.contains("does not descend from"), "\(moved.combined)")
        #expect(repo.calls() == deployed, "nothing deployed: \(repo.calls())")
        let status = try await repo.tide("status", extra: verify)
        #expect(status.standardOutput.contains("does not descend from"), "\(status.standardOutput)")
        let plan = try await repo.tide("plan", extra: verify)
        #expect(!plan.standardOutput.contains("ROLLBACK"), "\(plan.standardOutput)")

        // A revert on top of what runs is a rollback as before.
        try await repo.fixture.git("reset", "-q", "--hard", "HEAD@{1}")
        try keys.commitSigned(repo.fixture, "Revert api 1.0.2", files: ["api.yaml": ConfigRepo.service("api", "1.0.1")])
        let reverted = try await repo.tide("reconcile", extra: verify)
        #expect(reverted.status == 0, "\(reverted.combined)")
        #expect(repo.calls().suffix(2) == ["deploy api@prod 1.0.1", "health api@prod 1.0.1"], "\(repo.calls())")

        // Allowed by a person: applied, but classified by version alone, never as a ROLLBACK.
        try await repo.fixture.git("reset", "-q", "--hard", old.hex)
        try keys.commitSigned(repo.fixture, "api 1.0.2 again", files: ["api.yaml": ConfigRepo.service("api", "1.0.2")])
        let allowed = try await repo.tide("plan", extra: verify + ["--allow-history-rewrite"])
        #expect(allowed.standardOutput.contains("history was rewritten"), "\(allowed.combined)")
        #expect(!allowed.standardOutput.contains("ROLLBACK"), "\(allowed.standardOutput)")
    }

    @Test("SSH: unsigned and foreign heads are rejected and the last good stays; Tide's own rollback is signed")
    func ssh() async throws {
        let repo = try ConfigRepo()
        let keys = try SigningKeys(in: repo.scratch)
        let stranger = try SigningKeys(in: repo.scratch, name: "stranger", principal: "mallory@example.com")
        let verify = ["--verify-commits", "ssh", "--allowed-signers", keys.allowedSigners]
        func tide(_ arguments: String...) async throws -> ProcessOutput {
            try await repo.tide(arguments[0], extra: Array(arguments.dropFirst()) + verify)
        }
        func apiVersion() async throws -> String? {
            let status = try await repo.tide("status", "--json")
            let targets = (try repo.json(status) as? [String: Any])?["targets"] as? [[String: Any]]
            return targets?.first { $0["service"] as? String == "api" }?["version"] as? String
        }

        // The fixture's first commit is unsigned: nothing is applied.
        let first = try await tide("reconcile")
        #expect(first.status != 0, "\(first.combined)")
        #expect(first.combined.contains("is not signed"), "\(first.combined)")
        #expect(repo.calls().isEmpty)

        try keys.commitSigned(repo.fixture, "api 1.0.1 signed", files: ["api.yaml": ConfigRepo.service("api", "1.0.1")])
        let signed = try await tide("reconcile")
        #expect(signed.status == 0, "\(signed.combined)")
        #expect(try await apiVersion() == "1.0.1")

        // Unsigned, then signed by a key that is not allowed: rejected, 1.0.1 stays, the reason is shown.
        let unsigned = try await repo.fixture.commit(
            "api 2.0.0", files: ["api.yaml": ConfigRepo.service("api", "2.0.0")])
        let rejected = try await tide("reconcile")
        #expect(rejected.combined.contains("commit \(unsigned.short) is not signed"), "\(rejected.combined)")
        #expect(try await apiVersion() == "1.0.1")
        let status = try await repo.tide("status")
        #expect(status.standardOutput.contains("is not signed"), "\(status.standardOutput)")
        try stranger.commitSigned(
            repo.fixture, "api 3.0.0 by mallory", files: ["api.yaml": ConfigRepo.service("api", "3.0.0")])
        let foreign = try await tide("reconcile")
        #expect(foreign.combined.contains("is signed by a key not in"), "\(foreign.combined)")
        #expect(try await apiVersion() == "1.0.1")
        #expect(!repo.calls().contains { $0.contains("2.0.0") || $0.contains("3.0.0") }, "\(repo.calls())")
        let history = try await repo.tide("history", "--json")
        #expect(history.standardOutput.components(separatedBy: "revision.rejected").count - 1 >= 3)

        // A signed 2.0.0 deploys; Tide's rollback commit is signed with its key and applied under the same check.
        try keys.commitSigned(repo.fixture, "api 2.0.0 signed", files: ["api.yaml": ConfigRepo.service("api", "2.0.0")])
        #expect(try await tide("reconcile").status == 0)
        #expect(try await apiVersion() == "2.0.0")
        let rollback = try await tide("rollback", "api", "--env", "prod", "--signing-key", keys.sshKey)
        #expect(rollback.status == 0, "\(rollback.combined)")
        let head = try await repo.fixture.head()
        let verified = try await runProcess(
            GitFixture.gitPath,
            ["-c", "gpg.ssh.allowedSignersFile=\(keys.allowedSigners)", "verify-commit", head.hex],
            in: repo.fixture.workTree)
        #expect(verified.status == 0, "\(verified.standardError)")
        let rolledBack = try await tide("reconcile")
        #expect(rolledBack.status == 0, "\(rolledBack.combined)")
        #expect(try await apiVersion() == "1.0.1")

        // A signed 3.0.0 deployed, then an unsigned commit on top: Tide's own signed revert of 3.0.0 must not carry
        // it past the check.
        try keys.commitSigned(repo.fixture, "api 3.0.0 signed", files: ["api.yaml": ConfigRepo.service("api", "3.0.0")])
        #expect(try await tide("reconcile").status == 0)
        try await repo.fixture.commit(
            "web evil", files: ["web.yaml": ConfigRepo.service("web", "evil", dependsOn: "[api]")])
        let laundering = try await tide("rollback", "api", "--env", "prod", "--signing-key", keys.sshKey)
        #expect(laundering.status != 0, "\(laundering.combined)")
        #expect(laundering.combined.contains("Tide writes no commit on"), "\(laundering.combined)")
        let afterward = try await tide("reconcile")
        #expect(afterward.combined.contains("is not signed"), "\(afterward.combined)")
        #expect(!repo.calls().contains { $0.contains("evil") }, "\(repo.calls())")
    }

    @Test("GPG: a head signed by a key in the keyring is applied; another key's is not")
    func gpg() async throws {
        let repo = try ConfigRepo()
        let key = try GPGKey(in: repo.scratch)
        let stranger = try GPGKey(in: repo.scratch, name: "stranger", user: "Mallory <mallory@example.com>")
        defer {
            key.stop()
            stranger.stop()
        }
        let verify = ["--verify-commits", "gpg", "--gpg-keyring", key.publicKey]
        try key.commitSigned(repo.fixture, "signed", files: ["api.yaml": ConfigRepo.service("api", "1.0.1")])
        let applied = try await repo.tide("reconcile", extra: verify)
        #expect(applied.status == 0, "\(applied.combined)")
        try stranger.commitSigned(repo.fixture, "foreign", files: ["api.yaml": ConfigRepo.service("api", "2.0.0")])
        let refused = try await repo.tide("reconcile", extra: verify)
        #expect(refused.combined.contains("is signed by a key not in"), "\(refused.combined)")
        #expect(!repo.calls().contains { $0.contains("2.0.0") })
    }

    @Test("the keys must come from outside the repo, and each mode needs its file")
    func settings() async throws {
        let repo = try ConfigRepo()
        let keys = try SigningKeys(in: repo.scratch)
        try FileManager.default.copyItem(
            atPath: keys.allowedSigners, toPath: repo.fixture.workTree + "/allowed_signers")
        let inside = try await repo.tide(
            "reconcile",
            extra: ["--verify-commits", "ssh", "--allowed-signers", repo.fixture.workTree + "/allowed_signers"])
        #expect(inside.status != 0 && inside.combined.contains("is inside the config repo"), "\(inside.combined)")
        let missing = try await repo.tide("reconcile", extra: ["--verify-commits", "ssh"])
        #expect(missing.combined.contains("--verify-commits ssh needs --allowed-signers"), "\(missing.combined)")
        let bad = try await repo.tide("reconcile", extra: ["--verify-commits", "x509"])
        #expect(bad.combined.contains("'x509' is not ssh or gpg"), "\(bad.combined)")
        #expect(repo.calls().isEmpty)
    }
}
