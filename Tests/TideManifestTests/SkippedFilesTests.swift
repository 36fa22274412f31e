import Foundation
import Testing
import TideGit
import TideManifest
import TideTestSupport

@Suite("TideManifest: only regular .yaml/.yml files are manifests")
struct SkippedFilesTests {
    @Test("a symbolic link whose target text is a manifest is skipped with a warning; .YAML is named, not read")
    func symlinkAndUpperCase() throws {
        let fixture = try GitFixture()
        try fixture.write("base.yaml", validExecutor)
        let service = """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: evil}
            spec: {executor: local, version: "6.6.6", environments: {prod: {}}}

            """
        try fixture.write("Upper.YAML", service.replacingOccurrences(of: "evil", with: "upper"))
        try fixture.git("add", "-A")
        // A symlink (mode 120000) whose blob — the link's target text — is a whole manifest.
        let blob = try runProcess(
            GitFixture.gitPath, ["hash-object", "-w", "--stdin"], in: fixture.workTree, input: service
        ).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        try fixture.git("update-index", "--add", "--cacheinfo", "120000,\(blob),evil.yaml")
        try fixture.git("commit", "-q", "--no-verify", "-m", "a link that looks like a manifest")  // not add -A
        let head = try fixture.head()
        let tree = try fixture.git("ls-tree", "HEAD")
        #expect(tree.contains("120000 blob \(blob)\tevil.yaml"), "\(tree)")

        let repository = try Repository.open(at: fixture.repoPath)
        let desired = try ManifestLoader().load(from: GitCommitSource(repository: repository, commit: head, root: ""))
        #expect(desired.services["evil"] == nil, "the symlink was read as a manifest")
        #expect(desired.services["upper"] == nil)
        let warnings = desired.warnings.map(\.description)
        #expect(
            warnings.contains { $0.hasPrefix("evil.yaml:1:1: a symbolic link, not a manifest: skipped") }, "\(warnings)"
        )
        #expect(warnings.contains { $0.hasPrefix("Upper.YAML:1:1: not read: manifests end in .yaml or .yml") })
    }

    @Test(
        "a git submodule is named, not skipped silently: a warning from the loader and tide validate, and the revision still loads and deploys (hardening round two, 16)"
    )
    func submodule() async throws {
        let fixture = try GitFixture()
        try fixture.write("base.yaml", validExecutor)
        try fixture.write(
            "api.yaml",
            "apiVersion: tide/v1\nkind: Service\nmetadata: {name: api}\nspec: {executor: local, version: \"1\", environments: {prod: {}}}\n"
        )
        try await fixture.git("add", "-A")
        // Gitlinks (mode 160000) to commits of another repository, which are not in this one.
        let elsewhere = String(repeating: "ab", count: 20)
        try await fixture.git("update-index", "--add", "--cacheinfo", "160000,\(elsewhere),services/platform")
        try await fixture.git("update-index", "--add", "--cacheinfo", "160000,\(elsewhere),shared.yaml")
        try await fixture.git("commit", "-q", "--no-verify", "-m", "submodules")
        let head = try await fixture.head()
        let repository = try Repository.open(at: fixture.repoPath)
        let desired = try ManifestLoader().load(from: GitCommitSource(repository: repository, commit: head, root: ""))
        #expect(desired.services["api"] != nil)
        let warnings = desired.warnings.map(\.description)
        for path in ["services/platform", "shared.yaml"] {
            #expect(
                warnings.contains { $0.hasPrefix("\(path):1:1: a git submodule (commit abababa") }, "\(warnings)")
        }
        let validate = try await TideBinary.runDetached(["validate", "--repo", fixture.repoPath], in: fixture.workTree)
        #expect(validate.status == 0, "\(validate.combined)")
        #expect(validate.combined.contains("warning: services/platform:1:1: a git submodule"), "\(validate.combined)")
        let scratch = try TemporaryDirectory("tide-submodule")
        let reconcile = try await TideBinary.runDetached(
            ["reconcile", "--repo", fixture.repoPath, "--state", scratch.appending("state.sqlite")],
            in: fixture.workTree)
        #expect(reconcile.status == 0, "\(reconcile.combined)")
    }

    @Test("a UTF-8 byte order mark is not part of the manifest: it loads, and positions count from after it")
    func byteOrderMark() throws {
        let fixture = try GitFixture()
        let service =
            "apiVersion: tide/v1\nkind: Service\nmetadata: {name: api}\nspec: {executor: local, version: \"1\", environments: {prod: {}}}\n"
        try fixture.write("base.yaml", validExecutor)
        try fixture.write("api.yaml", "\u{FEFF}" + service)
        try fixture.write(
            "bad.yaml", "\u{FEFF}apiVersion: tide/v1\nkind: Service\nmetadata: {name: bad}\nspec: {nope: 1}\n")
        let head = try fixture.commit("with a BOM")
        let repository = try Repository.open(at: fixture.repoPath)
        do {
            _ = try ManifestLoader().load(from: GitCommitSource(repository: repository, commit: head, root: ""))
            Issue.record("bad.yaml was accepted")
        } catch let error as ManifestError {
            let messages = error.diagnostics.map(\.description)
            #expect(
                messages.contains { $0.hasPrefix("bad.yaml:4:") && $0.contains("unknown field 'nope'") }, "\(messages)")
            #expect(!messages.contains { $0.hasPrefix("api.yaml") }, "\(messages)")
        }
    }
}
