import Foundation
import Testing
import TideGit
import TideTestSupport

/// A corrupt object in the config repo: Debian's libgit2 1.5 loops for ever on this truncated loose blob. Tide
/// reads new revisions in a child first, so the pass is refused within the deadline with the object named, the
/// last good revision stays, and Tide itself never hangs.
@Suite("End to end: corrupt git objects")
struct CorruptObjectTests {
    @Test("a truncated loose blob: validate and reconcile refuse the revision at the deadline, naming it")
    func truncatedBlob() async throws {
        let repo = try ConfigRepo()
        #expect(try await repo.tide("reconcile").status == 0)
        let service = ConfigRepo.service("api", "2.0.0").replacingOccurrences(
            of: "environments: {prod: {}}",
            with: "environments: {prod: {}}\n  config: {pad: \"\(String(repeating: "x", count: 4000))\"}")
        try await repo.fixture.commit("api 2.0.0", files: ["api.yaml": service])
        let blob = try await repo.fixture.git("rev-parse", "HEAD:api.yaml").trimmingCharacters(
            in: .whitespacesAndNewlines)
        let object = repo.fixture.workTree + "/.git/objects/\(blob.prefix(2))/\(blob.dropFirst(2))"
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: object)
        let whole = try Data(contentsOf: URL(fileURLWithPath: object))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: object))

        let deadline = ["--fetch-timeout", "1s"]
        let started = Date()
        let validate = try await repo.tide("validate", extra: deadline)
        #expect(validate.status != 0)
        #expect(
            validate.standardError.contains(
                "corrupt object: the reader did not finish within 1 s reading blob \(blob)"),
            "\(validate.combined)")
        let pass = try await repo.tide("reconcile", extra: deadline)
        #expect(pass.combined.contains("cannot be read safely"), "\(pass.combined)")
        #expect(pass.combined.contains(blob), "\(pass.combined)")
        #expect(Date().timeIntervalSince(started) < 40)
        #expect(!repo.calls().contains { $0.contains("2.0.0") })
        let status = try await repo.tide("status", "--json", extra: deadline)
        #expect(status.standardOutput.contains("cannot be read safely"), "\(status.standardOutput)")

        // A fix on top (the corrupt blob is no longer needed): applied.
        try await repo.fixture.commit("api 2.0.1", files: ["api.yaml": ConfigRepo.service("api", "2.0.1")])
        let fixed = try await repo.tide("reconcile", extra: deadline)
        #expect(fixed.status == 0, "\(fixed.combined)")
        #expect(repo.calls().contains("deploy api@prod 2.0.1"))
    }

    @Test(
        "a truncated loose commit in history: plan and reconcile end at once naming it, status still answers, and no reader is left spinning (hardening round two addendum, 1)"
    )
    func truncatedHistory() async throws {
        let repo = try ConfigRepo()
        #expect(try await repo.tide("reconcile").status == 0)
        let middle = try await repo.fixture.commit(
            "api 1.1.0", files: ["api.yaml": ConfigRepo.service("api", "1.1.0")])
        try await repo.fixture.commit(
            "web 1.1.0", files: ["web.yaml": ConfigRepo.service("web", "1.1.0", dependsOn: "[api]")])
        let object = repo.fixture.workTree + "/.git/objects/\(middle.hex.prefix(2))/\(middle.hex.dropFirst(2))"
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: object)
        let whole = try Data(contentsOf: URL(fileURLWithPath: object))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: object))

        // status reads no history: it answers, and shows what is applied.
        let status = try await repo.tide("status", extra: ["--fetch-timeout", "1s"])
        #expect(status.status == 0 && status.standardOutput.contains("api@prod"), "\(status.combined)")
        for verb in ["plan", "reconcile"] {
            let started = Date()
            let result = try await repo.tide(verb, extra: ["--fetch-timeout", "1s"])
            #expect(Date().timeIntervalSince(started) < 20, "\(verb) took \(Date().timeIntervalSince(started)) s")
            #expect(result.status != 0, "\(verb): \(result.combined)")
            #expect(
                result.combined.contains("\(middle.hex.dropFirst(2)) (commit) is damaged (truncated)"),
                "\(verb): \(result.combined)")
        }
        #expect(!repo.calls().contains { $0.contains("1.1.0") })
        let readers = try await runProcess("/usr/bin/pgrep", ["-f", "git-check --repository \(repo.fixture.workTree)"])
        #expect(readers.standardOutput.isEmpty, "readers left running: \(readers.standardOutput)")

        // The object restored: everything goes on.
        try whole.write(to: URL(fileURLWithPath: object))
        let fixed = try await repo.tide("reconcile")
        #expect(fixed.status == 0, "\(fixed.combined)")
        #expect(repo.calls().contains("deploy web@prod 1.1.0"), "\(repo.calls())")
    }
}
