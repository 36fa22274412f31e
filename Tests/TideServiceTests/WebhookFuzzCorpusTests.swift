import Foundation
import Testing
import TideService
import TideTestSupport

/// Every input the webhook fuzzer kept (`Fuzz/corpus/webhook`, grown and minimised by `scripts/fuzz webhook`) runs
/// again through the same entry point: none may trap, and none passes a signature check it should not.
@Suite("TideService: the webhook fuzz corpus replays without a crash")
struct WebhookFuzzCorpusTests {
    @Test("webhook payloads and signatures: every kept input")
    func webhooks() async throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/webhook")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        #expect(names.count >= 50, "the webhook corpus has \(names.count) inputs")
        try await detached {
            for name in names.sorted() {
                WebhookFuzz.one(Array(try Data(contentsOf: directory.appendingPathComponent(name))))
            }
        }
    }
}
