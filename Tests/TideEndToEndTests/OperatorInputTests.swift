import Foundation
import Testing
import TideTestSupport

@Suite("End to end: what operators type is checked before it is recorded")
struct OperatorInputTests {
    @Test("tide approve refuses services and environments that do not exist, and control characters")
    func approve() async throws {
        let repo = try await detached { try ConfigRepo() }
        #expect(try await repo.tide("reconcile").status == 0)
        let unknownService = try await repo.tide("approve", "nope", "--env", "prod")
        #expect(unknownService.status == 1 && unknownService.standardError.contains("no service 'nope'"))
        let unknownEnvironment = try await repo.tide("approve", "api", "--env", "moon", "--version", "1.0.0")
        #expect(
            unknownEnvironment.status == 1 && unknownEnvironment.standardError.contains("api does not run in moon"),
            "\(unknownEnvironment.combined)")
        let escape = try await repo.tide("approve", "api", "--env", "prod", "--comment", "ok\u{1b}[2J")
        #expect(escape.status == 2 && escape.standardError.contains("--comment: control characters"))
        let newline = try await repo.tide("approve", "api", "--env", "prod", "--by", "mallory\nroot")
        #expect(newline.status == 2 && newline.standardError.contains("--by: control characters"))
        let history = try await repo.tide("history", "--all", "--json")
        #expect(!history.standardOutput.contains("approval.granted"), "nothing was recorded")
        // Ahead of git: allowed, and said so.
        let ahead = try await repo.tide("approve", "api", "--env", "prod", "--version", "2.0.0")
        #expect(ahead.status == 0 && ahead.standardError.contains("waits until git asks for it"), "\(ahead.combined)")
    }
}
