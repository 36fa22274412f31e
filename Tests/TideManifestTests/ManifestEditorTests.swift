import Testing
import TideManifest

@Suite("TideManifest: editing a version in place")
struct ManifestEditorTests {
    static let header =
        "apiVersion: tide/v1\nkind: Service\nmetadata: {name: api}\nspec:\n  executor: x\n  version: \"1.0.0\"\n"

    @Test(
        "only the version changes, whatever the style",
        arguments: [
            (
                "  environments:\n    staging: {}\n    prod: {version: \"1.0.0\"}  # pinned\n",
                "  environments:\n    staging: {}\n    prod: {version: \"2.0.0\"}  # pinned\n"
            ),
            (
                "  environments:\n    prod: {}\n",
                "  environments:\n    prod: {version: \"2.0.0\"}\n"
            ),
            (
                "  environments:\n    prod: {config: {replicas: 2}}\n",
                "  environments:\n    prod: {version: \"2.0.0\", config: {replicas: 2}}\n"
            ),
            (
                "  environments:\n    prod:\n      config: {replicas: 2}\n",
                "  environments:\n    prod:\n      version: \"2.0.0\"\n      config: {replicas: 2}\n"
            ),
            (
                "  environments:\n    prod:\n      version: 1.0.0 # old\n",
                "  environments:\n    prod:\n      version: \"2.0.0\" # old\n"
            ),
            (
                "  environments:\n    prod:   # the real one\n    staging: {}\n",
                "  environments:\n    prod: {version: \"2.0.0\"} # the real one\n    staging: {}\n"
            ),
            (
                "  environments: {staging: {}, prod: {version: '1.0.0'}}\n",
                "  environments: {staging: {}, prod: {version: \"2.0.0\"}}\n"
            ),
        ])
    func edits(before: String, after: String) throws {
        let edited = try ManifestEditor.settingVersion(
            in: Self.header + before, file: "api.yaml", service: "api", environment: "prod", version: "2.0.0")
        #expect(edited == Self.header + after)
        let (documents, diagnostics) = ManifestDecoder.decode(file: "api.yaml", text: edited)
        #expect(diagnostics.isEmpty)
        guard case .service(let service)? = documents.first else {
            Issue.record("no service")
            return
        }
        #expect(service.environments["prod"]?.version == "2.0.0")
    }

    @Test("the right document of a multi-document file is edited")
    func multiDocument() throws {
        let other = Self.header.replacingOccurrences(of: "name: api", with: "name: web")
        let text = other + "  environments: {prod: {}}\n---\n" + Self.header + "  environments: {prod: {}}\n"
        let edited = try ManifestEditor.settingVersion(
            in: text, file: "f.yaml", service: "api", environment: "prod", version: "3.1.4")
        #expect(
            edited == other + "  environments: {prod: {}}\n---\n" + Self.header
                + "  environments: {prod: {version: \"3.1.4\"}}\n")
    }

    @Test("errors name the file")
    func errors() {
        #expect(throws: ManifestEditor.EditError.self) {
            try ManifestEditor.settingVersion(
                in: Self.header + "  environments: {prod: {}}\n", file: "a.yaml", service: "api", environment: "qa",
                version: "1")
        }
        #expect(throws: ManifestEditor.EditError.self) {
            try ManifestEditor.settingVersion(
                in: Self.header + "  environments: {prod: {}}\n", file: "a.yaml", service: "web", environment: "prod",
                version: "1")
        }
        #expect(throws: ManifestEditor.EditError.self) {
            try ManifestEditor.settingVersion(
                in: Self.header + "  environments: {prod: {}}\n", file: "a.yaml", service: "api", environment: "prod",
                version: "../x")
        }
    }
}

@Suite("TideManifest: editing a version in a file with a broken document")
struct ManifestEditorBrokenDocumentTests {
    static let service =
        "apiVersion: tide/v1\nkind: Service\nmetadata: {name: api}\nspec:\n  environments: {prod: {version: \"1\"}}\n"

    @Test("a broken document after the Service does not stop the edit; one before it, or no Service, is reported")
    func brokenDocuments() throws {
        let broken = "---\nkind: Service\nmetadata: {name: web\n"
        let edited = try ManifestEditor.settingVersion(
            in: Self.service + broken, file: "s.yaml", service: "api", environment: "prod", version: "2")
        #expect(edited == Self.service.replacingOccurrences(of: "\"1\"", with: "\"2\"") + broken)
        #expect {
            try ManifestEditor.settingVersion(
                in: broken + "---\n" + Self.service, file: "s.yaml", service: "api", environment: "prod", version: "2")
        } throws: { error in
            "\(error)".hasPrefix("s.yaml:") && "\(error)".contains("YAML syntax error")
        }
        #expect {
            try ManifestEditor.settingVersion(
                in: "a: *nowhere\n", file: "s.yaml", service: "api", environment: "prod", version: "2")
        } throws: { error in
            "\(error)" == "s.yaml:1:4: YAML syntax error: found undefined alias"
        }
    }
}
