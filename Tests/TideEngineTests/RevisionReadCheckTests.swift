import Foundation
import Testing
import TideEngine
import TideGit
import TideTestSupport

/// The child that reads a revision before Tide does: a crash, a hang or a failure of the reader is reported with
/// the object it was reading, and never takes the caller with it.
@Suite("TideEngine: reading a revision in a child process")
struct RevisionReadCheckTests {
    static let commit = ObjectID(hex: String(repeating: "ab", count: 20))!

    func check(_ body: String, timeout: Double = 10) async throws -> String? {
        let scratch = try TemporaryDirectory("tide-readcheck")
        let script = scratch.appending("reader.sh")
        try
            "#!/bin/sh\ncat > /dev/null\necho 'reading commit abab' >&2\necho 'reading blob 1234 (api.yaml)' >&2\n\(body)\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        let reader = ChildReadCheck(repository: scratch.path, executable: script, timeout: timeout)
        // A script just written can be "busy" for a moment: a child another test forks meanwhile may hold the
        // written file open until it execs (ETXTBSY). Only that is tried again.
        for _ in 0..<20 {
            let answer = await reader.check(commit: Self.commit, root: "", known: [])
            guard answer?.contains("Text file busy") == true else { return answer }
            try await Task.sleep(for: .milliseconds(50))
        }
        return await reader.check(commit: Self.commit, root: "", known: [])
    }

    @Test("a reader that crashes: 'corrupt object', the signal and the object it was reading")
    func crash() async throws {
        let failure = try await check("kill -SEGV $$")
        #expect(failure == "corrupt object: the reader crashed (signal 11) reading blob 1234 (api.yaml)")
    }

    @Test("a reader that never finishes is stopped at the deadline, naming the object")
    func hang() async throws {
        // Measured from a moment the cooperative threads answer (other tests may hold them for seconds).
        await waitUntilThreadsAreResponsive()
        let started = Date()
        let failure = try await check("while :; do sleep 1; done", timeout: 2)
        #expect(failure == "corrupt object: the reader did not finish within 2 s reading blob 1234 (api.yaml)")
        #expect(Date().timeIntervalSince(started) < 15)
    }

    @Test("a reader that fails says why; one that finishes cleanly passes")
    func outcomes() async throws {
        let failed = try await check("echo 'error: object not found' >&2; exit 1")
        #expect(failed == "reading blob 1234 (api.yaml) failed: error: object not found")
        #expect(try await check("echo ok") == nil)
        // Exit 0 without the answer is not a pass.
        #expect(try await check("exit 0") != nil)
    }
}
