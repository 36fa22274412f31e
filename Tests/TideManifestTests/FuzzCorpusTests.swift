import Foundation
import Testing
import TideTestSupport

@testable import TideManifest

/// Every input the fuzzers kept (`Fuzz/corpus`, grown and minimised by `scripts/fuzz`) runs again here through
/// the same entry points: an input that once reached new code must never come to trap, hang or overflow.
@Suite("TideManifest: the fuzz corpus replays without a crash")
struct FuzzCorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")

    static func inputs(_ target: String) -> [URL] {
        let directory = root.appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test("manifest decoder: every kept input, each within 5 s")
    func manifests() async throws {
        let inputs = Self.inputs("manifest")
        #expect(inputs.count >= 100, "the manifest corpus has \(inputs.count) inputs")
        // Off Swift's cooperative threads: seconds of decoding must not hold them from other tests.
        let slow = try await detached {
            try inputs.filter { input in
                let started = ContinuousClock.now
                FuzzEntry.manifest(Array(try Data(contentsOf: input)))
                return ContinuousClock.now - started >= .seconds(5)
            }
        }
        #expect(slow.isEmpty, "\(slow.map(\.lastPathComponent))")
    }

    @Test("condition language: every kept input")
    func conditions() async throws {
        let inputs = Self.inputs("condition")
        #expect(inputs.count >= 100, "the condition corpus has \(inputs.count) inputs")
        try await detached {
            for input in inputs { FuzzEntry.condition(Array(try Data(contentsOf: input))) }
        }
    }

    @Test("remote URL parser and redaction: every kept input")
    func remoteURLs() async throws {
        let inputs = Self.inputs("remote-url")
        #expect(inputs.count >= 100, "the remote-url corpus has \(inputs.count) inputs")
        try await detached {
            for input in inputs { FuzzEntry.remoteURL(Array(try Data(contentsOf: input))) }
        }
    }
}
