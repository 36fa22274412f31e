import Foundation
import Testing
import TideGit
import TideManifest
import TideTestSupport

@Suite("TideManifest: follow-on errors")
struct FollowOnErrorTests {
    @Test("a reference to a document that failed to decode is not also reported as undefined")
    func brokenReferences() throws {
        let fixture = try GitFixture()
        let brokenExecutor = validExecutor.replacingOccurrences(
            of: "type: command", with: "type: command\n  colour: red")
        let id = try fixture.commit(
            "x",
            files: [
                "base.yaml": brokenExecutor, "a.yaml": service("a", dependsOn: ["b"]),
                "b.yaml": service("b") + "  oops: 1\n",
            ])
        let source = GitCommitSource(repository: try Repository.open(at: fixture.repoPath), commit: id, root: "")
        #expect {
            try ManifestLoader().load(from: source)
        } throws: { error in
            let messages = (error as? ManifestError)?.diagnostics.map(\.description) ?? []
            return messages.count == 2 && messages.allSatisfy { !$0.contains("is not defined") }
                && messages.contains { $0.contains("unknown field 'colour'") }
                && messages.contains { $0.contains("unknown field 'oops'") }
        }
    }
}
