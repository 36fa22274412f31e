import Foundation
import Testing
import TideGit
import TideManifest
import TideTestSupport

func service(_ name: String, version: String = "1.0.0", dependsOn: [String] = [], envs: String = "{prod: {}}") -> String
{
    """
    apiVersion: tide/v1
    kind: Service
    metadata: {name: \(name)}
    spec:
      executor: local
      version: "\(version)"
      environments: \(envs)
      dependsOn: [\(dependsOn.joined(separator: ", "))]

    """
}

@Suite("TideManifest: desired state as a whole")
struct DesiredStateTests {
    func load(
        _ files: [String: String], root: String = "", executables: Set<String> = []
    ) throws -> (DesiredState?, [Diagnostic]) {
        let fixture = try GitFixture()
        for (path, contents) in files { try fixture.write(path, contents, executable: executables.contains(path)) }
        let id = try fixture.commit("state")
        let source = GitCommitSource(repository: try Repository.open(at: fixture.repoPath), commit: id, root: root)
        do {
            return (try ManifestLoader().load(from: source), [])
        } catch let error as ManifestError {
            return (nil, error.diagnostics)
        }
    }

    @Test("the example manifests in manifests/ are valid")
    func examples() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("manifests")
        var files: [String: String] = [:]
        var executables: Set<String> = []
        let enumerator = FileManager.default.enumerator(atPath: root.path)
        while let path = enumerator?.nextObject() as? String {
            let full = root.appendingPathComponent(path).path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[path] = try String(contentsOfFile: full, encoding: .utf8)
                if FileManager.default.isExecutableFile(atPath: full) { executables.insert(path) }
            }
        }
        let (state, diagnostics) = try load(files, executables: executables)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let targets = try #require(state).targets.map(\.id.description)
        #expect(targets == ["payments@prod", "checkout@prod", "payments@staging", "checkout@staging"])
        let staging = try #require(state?.target(TargetID(service: "checkout", environment: "staging")))
        #expect(staging.version == "1.5.0")
        #expect(staging.dependsOn == ["payments"])
    }

    @Test("targets come in dependency order with overrides applied")
    func order() throws {
        let (state, diagnostics) = try load([
            "base.yaml": validExecutor + "---\n" + environment("staging"),
            "a.yaml": service("a", dependsOn: ["b"], envs: "{prod: {version: \"2.0.0\"}, staging: {}}"),
            "b.yaml": service("b", dependsOn: ["c"]),
            "c.yaml": service("c"),
        ])
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(state?.targets.map(\.id.description) == ["c@prod", "b@prod", "a@prod", "a@staging"])
        #expect(state?.target(TargetID(service: "a", environment: "prod"))?.version == "2.0.0")
        #expect(state?.target(TargetID(service: "a", environment: "staging"))?.version == "1.0.0")
        // b does not run in staging, so a@staging waits for nothing there.
        #expect(state?.target(TargetID(service: "a", environment: "staging"))?.dependsOn == [])
    }

    @Test("duplicate names across files point at both places")
    func duplicates() throws {
        let (_, diagnostics) = try load(["base.yaml": validExecutor, "a.yaml": service("a"), "b.yaml": service("a")])
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.description == "b.yaml:3:18: duplicate Service 'a' (first defined at a.yaml:3:18)")
    }

    @Test("missing references are errors at the reference")
    func missingReferences() throws {
        let bad = """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: a}
            spec:
              executor: remote
              version: "1"
              environments: {prod: {}, qa: {}}
              dependsOn: [ghost]

            """
        let (_, diagnostics) = try load(["base.yaml": validExecutor, "a.yaml": bad])
        let text = diagnostics.map(\.description)
        #expect(
            text.contains("a.yaml:5:13: Service 'a': spec.executor: executor 'remote' is not defined (defined: local)"))
        #expect(
            text.contains(
                "a.yaml:7:28: Service 'a': spec.environments: environment 'qa' is not defined (defined: prod)"))
        #expect(text.contains("a.yaml:8:15: Service 'a': spec.dependsOn: service 'ghost' is not defined (defined: a)"))
    }

    @Test("a dependsOn cycle is an error naming the cycle")
    func cycle() throws {
        let (_, diagnostics) = try load([
            "base.yaml": validExecutor, "a.yaml": service("a", dependsOn: ["b"]),
            "b.yaml": service("b", dependsOn: ["c"]), "c.yaml": service("c", dependsOn: ["a"]),
        ])
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.message.contains("dependency cycle: a → b → c → a") == true)
        #expect(diagnostics.first?.location.file == "c.yaml")
    }

    @Test("no manifests at all is an error, not an empty desired state")
    func empty() throws {
        let (_, diagnostics) = try load(["README.md": "nothing here"])
        #expect(diagnostics.first?.message.contains("no manifests found") == true)
    }

    @Test("only the manifest root is read, and only .yaml/.yml files")
    func root() throws {
        let (state, diagnostics) = try load(
            [
                "deploy/base.yaml": validExecutor, "deploy/a.yml": service("a"), "other/broken.yaml": "{{{",
                "deploy/x.txt": "{{{",
            ],
            root: "deploy")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(state?.targets.count == 1)
    }

    @Test("an unchanged file is parsed once per process; a changed one again")
    func cache() throws {
        let fixture = try GitFixture()
        let one = try fixture.commit(
            "one", files: ["base.yaml": validExecutor, "a.yaml": service("a"), "b.yaml": service("b")])
        let two = try fixture.commit("two", files: ["a.yaml": service("a", version: "2.0.0")])
        let repository = try Repository.open(at: fixture.repoPath)
        let loader = ManifestLoader()
        _ = try loader.load(from: GitCommitSource(repository: repository, commit: one, root: ""))
        #expect(loader.filesParsed == 3)
        _ = try loader.load(from: GitCommitSource(repository: repository, commit: one, root: ""))
        #expect(loader.filesParsed == 3)
        let state = try loader.load(from: GitCommitSource(repository: repository, commit: two, root: ""))
        #expect(loader.filesParsed == 4)
        #expect(state.target(TargetID(service: "a", environment: "prod"))?.version == "2.0.0")
    }
}

func environment(_ name: String) -> String {
    "apiVersion: tide/v1\nkind: Environment\nmetadata: {name: \(name)}\nspec: {}\n"
}
