import Foundation
import Testing
import TideGit
import TideTestSupport

@Suite("End to end: the flags executor and tide flag")
struct FlagsTests {
    static func repo(version: String, steps: String) -> [String: String] {
        [
            "base.yaml": """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: flags}
            spec: {type: flags, path: published/flags.json}
            ---
            apiVersion: tide/v1
            kind: Environment
            metadata: {name: prod}
            spec: {production: true}

            """,
            "checkout.yaml": """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: checkout}
            spec:
              executor: flags
              version: "\(version)"
              environments: {prod: {}}
              strategy:
                type: canary
                steps: \(steps)

            """,
        ]
    }

    /// The documented hash, computed by a different program: applications must be able to do the same.
    func pythonBucket(_ key: String) throws -> Int {
        let script = """
            import sys
            h = 2166136261
            for b in ("checkout/prod/" + sys.argv[1]).encode():
                h = ((h ^ b) * 16777619) % 2**32
            print(h % 100)
            """
        let output = try runProcess("/usr/bin/python3", ["-c", script, key])
        return Int(output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))!
    }

    @Test("weights are published to the file; tide flag answers by the documented stable hash")
    func flags() async throws {
        let fixture = try GitFixture()
        let scratch = try TemporaryDirectory("tide-flags")
        let state = scratch.appending("state.sqlite")
        func tide(_ arguments: String...) async throws -> ProcessOutput {
            try await TideBinary.runDetached(
                arguments + ["--repo", fixture.repoPath, "--state", state], in: scratch.path)
        }
        let published = fixture.repoPath + "/published/flags.json"
        try await fixture.commit("1.0.0", files: Self.repo(version: "1.0.0", steps: "[{setWeight: 30}, {pause: {}}]"))
        #expect(try await tide("reconcile").status == 0)
        var file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: published)))
        var entry = try #require(
            ((file as? [String: Any])?["targets"] as? [String: Any])?["checkout@prod"] as? [String: Any])
        #expect(entry["stable"] as? String == "1.0.0")
        #expect(entry["candidate"] == nil)
        #expect(try await tide("flag", "checkout", "--env", "prod", "--key", "user-1").standardOutput.contains("1.0.0"))

        try await fixture.commit("2.0.0", files: Self.repo(version: "2.0.0", steps: "[{setWeight: 30}, {pause: {}}]"))
        #expect(try await tide("reconcile").status == 0)
        file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: published)))
        entry = try #require(
            ((file as? [String: Any])?["targets"] as? [String: Any])?["checkout@prod"] as? [String: Any])
        #expect(entry["stable"] as? String == "1.0.0")
        #expect(entry["candidate"] as? String == "2.0.0")
        #expect(entry["weight"] as? Int == 30)

        var candidates = 0
        for n in 0..<40 {
            let key = "user-\(n)"
            let output = try await tide("flag", "checkout", "--env", "prod", "--key", key, "--json")
            let answer = try #require(
                try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any])
            let bucket = try pythonBucket(key)
            #expect(answer["bucket"] as? Int == bucket, "\(key)")
            #expect(answer["version"] as? String == (bucket < 30 ? "2.0.0" : "1.0.0"), "\(key)")
            if answer["side"] as? String == "candidate" { candidates += 1 }
        }
        #expect(candidates > 4 && candidates < 20, "about 30 % of 40 users: \(candidates)")

        #expect(try await tide("promote", "checkout", "--env", "prod").status == 0)
        #expect(try await tide("reconcile").status == 0)
        file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: published)))
        entry = try #require(
            ((file as? [String: Any])?["targets"] as? [String: Any])?["checkout@prod"] as? [String: Any])
        #expect(entry["stable"] as? String == "2.0.0")
        #expect(entry["candidate"] == nil)

        try await fixture.commit(
            "shadow with flags",
            files: Self.repo(version: "3.0.0", steps: "[{setWeight: 30}]").mapValues {
                $0.replacingOccurrences(
                    of: "spec: {type: flags, path: published/flags.json}", with: "spec: {type: flags}")
            })
        let rejected = try await tide("validate")
        #expect(rejected.status == 1)
        #expect(rejected.standardError.contains("base.yaml:4:7: Executor 'flags': spec: missing required field 'path'"))
    }
}
