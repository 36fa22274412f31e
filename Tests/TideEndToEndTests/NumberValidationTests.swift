import Foundation
import Testing
import TideTestSupport

@Suite("End to end: numbers on the command line are checked before anything runs")
struct NumberValidationTests {
    @Test(
        "infinite, NaN and absurd numbers are usage errors that name the option",
        arguments: [
            (["reconcile", "--lock-timeout", "inf"], "--lock-timeout"),
            (["reconcile", "--lock-timeout", "nan"], "--lock-timeout"),
            (["reconcile", "--lock-timeout", "-1"], "--lock-timeout"),
            // Hardening round two, 16: what Swift's Double reads but a person does not mean.
            (["reconcile", "--lock-timeout", "0x10"], "--lock-timeout"),
            (["reconcile", "--lock-timeout", "25h"], "--lock-timeout"),
            (["status", "--branch", "main\u{1b}[2J"], "--branch: control characters"),
            (["dora", "--since", "99999999d"], "--since"),
            (["dora", "--since", "inf"], "--since"),
            (["dora", "--since", "99999999999w"], "--since"),
        ])
    func refused(_ arguments: [String], _ option: String) async throws {
        let repo = try await detached { try ConfigRepo() }
        let started = Date()
        let result = try await repo.tide(arguments[0], extra: Array(arguments.dropFirst()))
        #expect(result.status == 2, "\(arguments): \(result.combined)")
        #expect(result.standardError.contains(option), "\(result.standardError)")
        #expect(Date().timeIntervalSince(started) < 20, "\(arguments) took long")
        #expect(repo.calls().isEmpty)
    }

    @Test("a commit with 500 problems is rejected with all of them printed, and the state keeps 200 and a count")
    func boundedDiagnostics() async throws {
        let repo = try await detached { try ConfigRepo() }
        #expect(try await repo.tide("reconcile").status == 0)
        let broken = (0..<500).map { n in
            "apiVersion: tide/v1\nkind: Service\nmetadata: {name: s\(n)}\nspec: {nope: 1}\n"
        }.joined(separator: "---\n")
        try await detached { _ = try repo.fixture.commit("500 problems", files: ["broken.yaml": broken]) }
        let reconcile = try await repo.tide("reconcile")
        #expect(reconcile.status == 1)
        #expect(reconcile.standardError.components(separatedBy: "unknown field 'nope'").count - 1 == 500)
        let status = try await repo.tide("status", "--json")
        let rejection = try #require((try repo.json(status) as? [String: Any])?["rejection"] as? [[String: Any]])
        #expect(rejection.count == 201, "\(rejection.count)")
        #expect((rejection.last?["message"] as? String)?.contains("more problem(s), not kept") == true)
        #expect(status.standardOutput.utf8.count < 200_000)
    }
}
