import Foundation
import Testing
import TideGit
import TideTestSupport

@Suite("TideGit: reading a repository through libgit2")
struct RepositoryTests {
    @Test("resolves the branch HEAD points to and reads commit metadata")
    func commitMetadata() throws {
        let fixture = try GitFixture()
        let first = try fixture.commit("first\n\nbody text", files: ["a.yaml": "a: 1\n"])
        let second = try fixture.commit("second", files: ["a.yaml": "a: 2\n"])
        let repository = try Repository.open(at: fixture.repoPath)

        #expect(try repository.headBranch() == "main")
        #expect(try repository.resolveCommit(branch: nil) == second)
        #expect(try repository.resolveCommit(branch: "main") == second)
        let commit = try repository.commit(second)
        #expect(commit.parents == [first])
        #expect(commit.summary == "second")
        #expect(commit.author.name == "Test Author")
        #expect(commit.author.email == "author@example.com")
        #expect(abs(commit.committer.time.timeIntervalSinceNow) < 600)
        #expect(try repository.commit(first).message.hasPrefix("first\n\nbody text"))
        #expect(try repository.commit(first).parents.isEmpty)
    }

    @Test("reads a tree and its blobs without a checkout, in a bare repository too", arguments: [false, true])
    func filesAndBlobs(bare: Bool) throws {
        let fixture = try GitFixture(bare: bare)
        try fixture.write("deploy/run.sh", "#!/bin/sh\n", executable: true)
        let id = try fixture.commit(
            "files", files: ["manifests/a.yaml": "kind: A\n", "manifests/sub/b.yml": "kind: B\n", "README": "x"])
        let repository = try Repository.open(at: fixture.repoPath)
        #expect(repository.isBare == bare)

        let all = try repository.files(at: id)
        #expect(all.map(\.path).sorted() == ["README", "deploy/run.sh", "manifests/a.yaml", "manifests/sub/b.yml"])
        #expect(all.first { $0.path == "deploy/run.sh" }?.isExecutable == true)
        #expect(all.first { $0.path == "README" }?.isExecutable == false)

        let manifests = try repository.files(at: id, under: "manifests/")
        #expect(manifests.map(\.path).sorted() == ["manifests/a.yaml", "manifests/sub/b.yml"])
        let blob = try #require(manifests.first { $0.path == "manifests/a.yaml" }).blob
        #expect(String(decoding: try repository.blob(blob), as: UTF8.self) == "kind: A\n")
    }

    @Test("a missing manifest root is an error naming the path")
    func missingRoot() throws {
        let fixture = try GitFixture()
        let id = try fixture.commit("one", files: ["a.yaml": "x"])
        let repository = try Repository.open(at: fixture.repoPath)
        #expect {
            try repository.files(at: id, under: "nope")
        } throws: { error in
            "\(error)".contains("nope")
        }
    }

    @Test("blob ids match git hash-object")
    func blobHash() throws {
        let fixture = try GitFixture()
        try fixture.write("x.txt", "hello tide\n")
        let expected = try fixture.git("hash-object", "x.txt").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(ObjectID.blobHash(of: Array("hello tide\n".utf8)).hex == expected)
    }

    @Test("tree-to-tree diff names added, modified and deleted paths")
    func diff() throws {
        let fixture = try GitFixture()
        let one = try fixture.commit("one", files: ["a.yaml": "1", "b.yaml": "1"])
        try fixture.remove("b.yaml")
        let two = try fixture.commit("two", files: ["a.yaml": "2", "c.yaml": "1"])
        let repository = try Repository.open(at: fixture.repoPath)
        let changes = try repository.changedPaths(from: one, to: two)
        let byPath = Dictionary(uniqueKeysWithValues: changes.map { ($0.newPath, $0.status) })
        #expect(byPath == ["a.yaml": .modified, "b.yaml": .deleted, "c.yaml": .added])
        #expect(try repository.changedPaths(from: nil, to: one).count == 2)
        #expect(try repository.changedPaths(from: two, to: two).isEmpty)
    }

    @Test("a path-limited walk keeps only commits that touch the path")
    func pathLimitedWalk() throws {
        let fixture = try GitFixture()
        let base = try fixture.commit("base", files: ["svc/a.yaml": "1", "svc/b.yaml": "1"])
        let touchA = try fixture.commit("a", files: ["svc/a.yaml": "2"])
        _ = try fixture.commit("b", files: ["svc/b.yaml": "2"])
        let touchA2 = try fixture.commit("a again", files: ["svc/a.yaml": "3"])
        let repository = try Repository.open(at: fixture.repoPath)

        let commits = try repository.commits(from: touchA2, excluding: base, touching: ["svc/a.yaml"])
        #expect(commits.map(\.id) == [touchA2, touchA])
        #expect(try repository.commits(from: touchA2, excluding: base).count == 3)
        #expect(try repository.commits(from: touchA2, touching: ["svc"]).count == 4)
        #expect(try repository.commits(from: touchA2, limit: 2).count == 2)
    }

    @Test("a git revert commit names the commit it reverts")
    func revertDetection() throws {
        let fixture = try GitFixture()
        _ = try fixture.commit("one", files: ["a.yaml": "1"])
        let change = try fixture.commit("two", files: ["a.yaml": "2"])
        let revert = try fixture.revert(change)
        let repository = try Repository.open(at: fixture.repoPath)
        #expect(try repository.commit(revert).revertedCommit == change)
        #expect(try repository.commit(change).revertedCommit == nil)
    }

    @Test("staged files come from the index, not the work tree or HEAD")
    func stagedFiles() throws {
        let fixture = try GitFixture()
        _ = try fixture.commit("one", files: ["m/a.yaml": "committed\n"])
        try fixture.write("m/a.yaml", "staged\n")
        try fixture.git("add", "m/a.yaml")
        try fixture.write("m/a.yaml", "only in work tree\n")
        let repository = try Repository.open(at: fixture.repoPath)
        let staged = try repository.stagedFiles(under: "m")
        #expect(staged.map(\.path) == ["m/a.yaml"])
        #expect(String(decoding: try repository.blob(staged[0].blob), as: UTF8.self) == "staged\n")
    }

    @Test("libgit2 errors carry libgit2's message")
    func errors() throws {
        let directory = try TemporaryDirectory()
        #expect {
            try Repository.open(at: directory.appending("missing"))
        } throws: { error in
            let error = try #require(error as? GitError)
            return error.isNotFound && error.description.contains("missing") && !error.message.isEmpty
        }
        let fixture = try GitFixture()
        _ = try fixture.commit("one", files: ["a": "1"])
        let repository = try Repository.open(at: fixture.repoPath)
        #expect(throws: GitError.self) { try repository.resolveCommit(branch: "no-such-branch") }
    }

    @Test("create and commit working files makes a first commit on the chosen branch")
    func createAndCommit() throws {
        let directory = try TemporaryDirectory()
        let path = directory.appending("repo")
        let repository = try Repository.create(at: path, initialBranch: "trunk")
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: path + "/a.txt"))
        let id = try repository.commitWorkingFiles(["a.txt"], message: "first\n")
        #expect(try repository.headBranch() == "trunk")
        #expect(try repository.resolveCommit(branch: nil) == id)
        let log = try runProcess(GitFixture.gitPath, ["log", "--format=%s", "trunk"], in: path)
        #expect(log.standardOutput == "first\n")
    }
}
