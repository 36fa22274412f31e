import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideTestSupport

/// Programs named by a relative path are files of the revision (see `RevisionFiles`). What must never happen: a
/// program outside the manifest root, a symbolic link followed, a program that is not executable in git accepted,
/// another revision's file run, a file of the directory Tide runs in run instead.
@Suite("TideEngine: executors' programs come from the revision")
struct RevisionFilesTests {
    static let environment = "---\napiVersion: tide/v1\nkind: Environment\nmetadata: {name: prod}\nspec: {}\n"

    static func executor(_ command: String, type: String = "command") -> String {
        "apiVersion: tide/v1\nkind: Executor\nmetadata: {name: x}\nspec: {type: \(type), command: \(command)}\n"
    }

    static let service = """
        ---
        apiVersion: tide/v1
        kind: Service
        metadata: {name: api}
        spec: {executor: x, version: "1", environments: {prod: {}}}

        """

    func load(_ fixture: GitFixture, root: String = "") throws -> [String] {
        let repository = try Repository.open(at: fixture.repoPath)
        do {
            _ = try ManifestLoader().load(
                from: GitCommitSource(repository: repository, commit: try fixture.head(), root: root))
            return []
        } catch let error as ManifestError {
            return error.diagnostics.map(\.description)
        }
    }

    @Test(
        "a relative program that is missing, not executable, a symbolic link or outside the manifest root is refused at its place"
    )
    func validation() throws {
        let fixture = try GitFixture()
        try fixture.write("bin/deploy", "#!/bin/sh\n", executable: true)
        try fixture.write("bin/plain", "#!/bin/sh\n")
        try fixture.commit("scripts")
        try fixture.git("config", "core.symlinks", "true")
        try FileManager.default.createSymbolicLink(
            atPath: fixture.workTree + "/bin/link", withDestinationPath: "/bin/true")
        let cases: [(String, String)] = [
            ("[./bin/missing]", "'./bin/missing' is not a file of this revision under the manifest root"),
            (
                "[./bin/plain]",
                "'./bin/plain' is not executable in git (mode 100644): git update-index --chmod=+x bin/plain"
            ),
            ("[./bin/link]", "'./bin/link' is a symbolic link; Tide runs only regular files of the revision"),
            ("[../outside/deploy]", "'../outside/deploy' goes up with '..'"),
            ("[bin/../../deploy]", "'bin/../../deploy' goes up with '..'"),
        ]
        for (command, message) in cases {
            try fixture.commit(
                command, files: ["tide.yaml": Self.executor(command) + Self.environment + Self.service])
            let diagnostics = try load(fixture)
            #expect(diagnostics.count == 1, "\(command): \(diagnostics)")
            #expect(
                diagnostics.first?.hasPrefix("tide.yaml:4:32: Executor 'x': spec.command: \(message)") == true,
                "\(command): \(diagnostics)")
        }
        for command in ["[./bin/deploy]", "[bin/deploy, --now]", "[/bin/true]", "[true]"] {
            try fixture.commit(command, files: ["tide.yaml": Self.executor(command) + Self.environment + Self.service])
            #expect(try load(fixture).isEmpty, "\(command)")
        }
        // An analysis command provider is checked the same way.
        let analysis = """
            ---
            apiVersion: tide/v1
            kind: Analysis
            metadata: {name: a}
            spec: {metrics: [{name: m, provider: {command: {command: [./tools/measure]}}, successCondition: "true"}]}

            """
        try fixture.commit(
            "analysis", files: ["tide.yaml": Self.executor("[/bin/true]") + Self.environment + Self.service + analysis])
        let diagnostics = try load(fixture)
        #expect(diagnostics.count == 1 && diagnostics[0].contains("Analysis 'a': metric 'm': provider command:"))
    }

    @Test("relative programs resolve against the manifest root, not the repository root")
    func manifestRoot() throws {
        let fixture = try GitFixture()
        try fixture.write("deploy/bin/deploy", "#!/bin/sh\n", executable: true)
        try fixture.write("bin/deploy", "#!/bin/sh\n", executable: true)
        try fixture.commit(
            "nested", files: ["deploy/tide.yaml": Self.executor("[./bin/deploy]") + Self.environment + Self.service])
        #expect(try load(fixture, root: "deploy").isEmpty)
        try fixture.remove("deploy/bin")
        try fixture.commit("gone")
        #expect(try load(fixture, root: "deploy").first?.contains("is not a file of this revision") == true)
    }

    @Test(
        "copies are read-only, keep git's executable bits, are shared by revisions with the same unit, and go when unused"
    )
    func materialised() async throws {
        let fixture = try GitFixture()
        try fixture.write("bin/deploy", "#!/bin/sh\necho one\n", executable: true)
        try fixture.write("bin/lib.sh", "x=1\n")
        try fixture.write("other/file", "y\n")
        let first = try await fixture.commit("one")
        try fixture.write("README", "docs\n")
        let second = try await fixture.commit("docs only")
        try fixture.write("bin/deploy", "#!/bin/sh\necho two\n", executable: true)
        let third = try await fixture.commit("two")
        let state = try TemporaryDirectory("tide-revisions")
        let store = RevisionFileStore(
            repository: try Repository.open(at: fixture.repoPath), root: "", directory: state.appending("revisions"))

        let one = try store.path(of: "./bin/deploy", revision: first.hex)
        let same = try store.path(of: "bin/deploy", revision: second.hex)
        let two = try store.path(of: "./bin/deploy", revision: third.hex)
        #expect(one == same, "an unchanged bin/ is one copy")
        #expect(one != two)
        #expect(try String(contentsOfFile: one, encoding: .utf8) == "#!/bin/sh\necho one\n")
        #expect(try String(contentsOfFile: two, encoding: .utf8) == "#!/bin/sh\necho two\n")
        let manager = FileManager.default
        let lib = (one as NSString).deletingLastPathComponent + "/lib.sh"
        #expect(try manager.attributesOfItem(atPath: one)[.posixPermissions] as? Int == 0o555)
        #expect(try manager.attributesOfItem(atPath: lib)[.posixPermissions] as? Int == 0o444)
        #expect(!manager.fileExists(atPath: (one as NSString).deletingLastPathComponent + "/../other"))
        #expect(!manager.isWritableFile(atPath: one) || getuid() == 0)

        // The program runs from its copy, whatever directory Tide is in.
        let factory = DefaultExecutorFactory(workingDirectory: state.path, programs: store)
        let manifest = ExecutorManifest(
            name: "x", location: SourceLocation(file: "x.yaml", line: 1, column: 1), command: ["./bin/deploy"])
        let result = await (try factory.makeExecutor(for: manifest, revision: third.hex)).perform(
            ActionRequest(
                action: .deploy, service: "api", environment: "prod", version: "1", previousVersion: nil, weight: 100,
                revision: third.hex, actionID: "a", config: .null))
        #expect(result.succeeded && result.standardOutput == "two\n", "\(result.summary)")
        #expect(throws: RevisionFileStore.Failure.self) { try store.path(of: "./bin/missing", revision: third.hex) }

        store.collectGarbage(before: Date().addingTimeInterval(60))
        #expect(try manager.contentsOfDirectory(atPath: state.appending("revisions")).isEmpty)
        // Needed again: written again from git.
        #expect(try store.path(of: "./bin/deploy", revision: first.hex) == one)
        #expect(manager.fileExists(atPath: one))
    }
}
