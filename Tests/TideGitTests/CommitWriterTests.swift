import Foundation
import Testing
import TideGit
import TideTestSupport

@Suite("TideGit: writing a commit")
struct CommitWriterTests {
    @Test("commitFile writes one file on a branch, without a checkout, in a bare repository", arguments: [true, false])
    func commitFile(bare: Bool) throws {
        let fixture = try GitFixture(bare: bare)
        let base = try fixture.commit("base", files: ["svc/a.yaml": "a: 1\n", "svc/b.yaml": "b: 1\n"])
        let repository = try Repository.open(at: fixture.repoPath)
        let written = try repository.commitFile(
            path: "svc/a.yaml", contents: Array("a: 2\n".utf8), branch: "main", parent: base, message: "bump a\n")
        #expect(try repository.resolveCommit(branch: "main") == written.commit)
        let commit = try repository.commit(written.commit)
        #expect(commit.parents == [base])
        #expect(commit.summary == "bump a")
        #expect(try repository.changedPaths(from: base, to: written.commit).map(\.newPath) == ["svc/a.yaml"])
        let files = try repository.files(at: written.commit)
        let a = try #require(files.first { $0.path == "svc/a.yaml" })
        #expect(String(decoding: try repository.blob(a.blob), as: UTF8.self) == "a: 2\n")
        if !bare {
            // The checked-out work tree and index follow, so git status stays clean.
            #expect(written.workTreeUpdated)
            #expect(try String(contentsOfFile: fixture.workTree + "/svc/a.yaml", encoding: .utf8) == "a: 2\n")
            #expect(try fixture.git("status", "--porcelain") == "")
        }
    }

    @Test("a branch that moved meanwhile is not overwritten")
    func compareAndSwap() throws {
        let fixture = try GitFixture()
        let base = try fixture.commit("base", files: ["a.yaml": "1\n"])
        let moved = try fixture.commit("other", files: ["b.yaml": "1\n"])
        let repository = try Repository.open(at: fixture.repoPath)
        #expect {
            try repository.commitFile(
                path: "a.yaml", contents: Array("2\n".utf8), branch: "main", parent: base, message: "x")
        } throws: { error in
            "\(error)".contains("moved on since \(base.short)")
        }
        #expect(try repository.resolveCommit(branch: "main") == moved)
    }

    @Test("local edits in the work tree are left alone")
    func localEdits() throws {
        let fixture = try GitFixture()
        let base = try fixture.commit("base", files: ["a.yaml": "1\n"])
        try fixture.write("a.yaml", "mine\n")
        let repository = try Repository.open(at: fixture.repoPath)
        let written = try repository.commitFile(
            path: "a.yaml", contents: Array("2\n".utf8), branch: "main", parent: base, message: "x")
        #expect(!written.workTreeUpdated)
        #expect(try String(contentsOfFile: fixture.workTree + "/a.yaml", encoding: .utf8) == "mine\n")
    }
}
