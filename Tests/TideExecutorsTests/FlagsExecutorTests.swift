import Foundation
import Testing
import TideExecutors
import TideManifest
import TideTestSupport

@Suite("TideExecutors: the flags executor")
struct FlagsExecutorTests {
    func request(_ action: ExecutorAction, weight: Int) -> ActionRequest {
        ActionRequest(
            action: action, service: "api", environment: "prod", version: "2.0.0", previousVersion: "1.0.0",
            weight: weight, revision: String(repeating: "a", count: 40), actionID: "api.prod.x", config: .object([:]))
    }

    @Test("a file it cannot write is transient (unavailable, retried, never the candidate's failure); it heals")
    func unwritableIsTransient() async throws {
        let scratch = try TemporaryDirectory("tide-flags")
        let directory = scratch.appending("flags")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let executor = FlagsExecutor(path: directory + "/flags.json")
        #expect(await executor.perform(request(.deploy, weight: 0)).succeeded)
        // The lock cannot be opened (here: something else took its name — a directory, which root cannot open
        // for writing either).
        try FileManager.default.removeItem(atPath: directory + "/flags.json.lock")
        try FileManager.default.createDirectory(
            atPath: directory + "/flags.json.lock", withIntermediateDirectories: false)
        let failed = await executor.perform(request(.setWeight, weight: 40))
        #expect(failed.isTransient, "\(failed.summary)")
        #expect(!failed.succeeded)
        if case .unavailable = failed.outcome {} else { Issue.record("outcome \(failed.outcome)") }
        try FileManager.default.removeItem(atPath: directory + "/flags.json.lock")
        #expect(await executor.perform(request(.setWeight, weight: 40)).succeeded)
        let file = try String(contentsOfFile: directory + "/flags.json", encoding: .utf8)
        #expect(file.contains("\"weight\" : 40") || file.contains("\"weight\":40"), "\(file)")
    }
}
