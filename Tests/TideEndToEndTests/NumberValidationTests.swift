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
}
