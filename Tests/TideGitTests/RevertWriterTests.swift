import Foundation
import Testing
import TideGit
import TideTestSupport

@Suite("TideGit: writing reverts")
struct RevertWriterTests {
    @Test("revert writes git's revert commits, newest first, and moves the branch")
    func revert() throws {
        let fixture = try GitFixture()
        let base = try fixture.commit("base", files: ["a.yaml": "version: 1\n", "b.yaml": "x: 1\n"])
        let one = try fixture.commit("a 2", files: ["a.yaml": "version: 2\n"])
        let two = try fixture.commit("b 2", files: ["b.yaml": "x: 2\n"])
        let repository = try Repository.open(at: fixture.repoPath)
        let result = try repository.revert([two, one], branch: "main", parent: two, note: "because")
        #expect(result.commits.count == 2)
        #expect(try repository.resolveCommit(branch: "main") == result.commits.last)
        let last = try repository.commit(result.commits[1])
        #expect(last.revertedCommit == one)
        #expect(last.summary == "Revert \"a 2\"")
        #expect(last.message.contains("because"))
        #expect(try repository.commit(result.commits[0]).revertedCommit == two)
        #expect(try repository.changedPaths(from: base, to: result.commits[1]).isEmpty)
        #expect(result.workTreeUpdated)
        #expect(try fixture.git("status", "--porcelain") == "")
    }

    @Test("a revert that conflicts writes nothing")
    func conflict() throws {
        let fixture = try GitFixture()
        _ = try fixture.commit("base", files: ["a.yaml": "version: 1\n"])
        let change = try fixture.commit("two", files: ["a.yaml": "version: 2\n"])
        let head = try fixture.commit("three", files: ["a.yaml": "version: 3\n"])
        let repository = try Repository.open(at: fixture.repoPath)
        #expect {
            try repository.revert([change], branch: "main", parent: head)
        } throws: { error in
            "\(error)".contains("does not apply cleanly")
        }
        #expect(try repository.resolveCommit(branch: "main") == head)
    }
}
