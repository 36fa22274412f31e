import Foundation
import Testing
import TideGit
import TideManifest
import TideTestSupport

@Suite("TideManifest: environments")
struct EnvironmentManifestTests {
    func load(_ text: String) throws -> (DesiredState?, [Diagnostic]) {
        let fixture = try GitFixture()
        let id = try fixture.commit("x", files: ["envs.yaml": text, "a.yaml": service("a", envs: "{prod: {}}")])
        let source = GitCommitSource(repository: try Repository.open(at: fixture.repoPath), commit: id, root: "")
        do {
            return (try ManifestLoader().load(from: source), [])
        } catch let error as ManifestError {
            return (nil, error.diagnostics)
        }
    }

    static let executor =
        "apiVersion: tide/v1\nkind: Executor\nmetadata: {name: local}\nspec: {type: command, command: [x]}\n"

    static func env(_ name: String, _ spec: String) -> String {
        "---\napiVersion: tide/v1\nkind: Environment\nmetadata: {name: \(name)}\nspec: \(spec)\n"
    }

    @Test("a cycle in requires is rejected at the entry that closes it")
    func requiresCycle() throws {
        let (_, diagnostics) = try load(
            Self.executor + Self.env("dev", "{requires: [prod]}") + Self.env("staging", "{requires: [dev]}")
                + Self.env("prod", "{requires: [staging]}"))
        #expect(
            diagnostics.map(\.description) == [
                "envs.yaml:14:19: Environment 'staging': spec.requires: dependency cycle: dev → prod → staging → dev"
            ])
    }

    @Test("gates decode, and environments come in requires order")
    func decodes() throws {
        let (state, diagnostics) = try load(
            Self.executor
                + Self.env(
                    "prod",
                    #"{requires: [staging], bake: 90m, approval: manual, promotion: auto, windows: [{days: [mon, fri], start: "22:00", end: "02:00", timezone: America/New_York}], freezes: [{from: "2027-12-20", to: "2028-01-04", reason: holidays}]}"#
                )
                + Self.env("staging", "{}"))
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let prod = try #require(state?.environments["prod"])
        #expect(prod.requires == ["staging"])
        #expect(prod.bake == 5400)
        #expect(prod.approval == .manual)
        #expect(prod.promotion == .auto)
        #expect(prod.windows.first?.weekdays == [2, 6])
        #expect(prod.windows.first?.start == 22 * 60)
        #expect(prod.windows.first?.timeZone.identifier == "America/New_York")
        #expect(prod.freezes.first?.reason == "holidays")
        #expect(prod.freezes.first?.until == Date(timeIntervalSince1970: 1_830_643_200))  // 2028-01-05T00:00Z
    }

    @Test(
        "bad gates name file, line, column and field",
        arguments: [
            (
                #"{requires: [qa]}"#,
                "envs.yaml:9:19: Environment 'prod': spec.requires: environment 'qa' is not defined"
            ),
            (#"{approval: sometimes}"#, "spec.approval: 'sometimes' is not one of manual, auto"),
            (
                #"{windows: [{days: [mon], start: "9am", end: "17:00"}]}"#,
                "spec.windows[0].start: '9am' is not a time of day"
            ),
            (
                #"{windows: [{days: [monday], start: "09:00", end: "17:00"}]}"#,
                "spec.windows[0].days: 'monday' is not a day"
            ),
            (
                #"{windows: [{days: [mon], start: "09:00", end: "17:00", timezone: Mars/Olympus}]}"#,
                "'Mars/Olympus' is not an IANA time zone"
            ),
            (
                #"{freezes: [{from: "2027-02-30", to: "2027-03-01"}]}"#,
                "spec.freezes[0].from: '2027-02-30' is not a date"
            ),
            (#"{freezes: [{from: "2027-03-02", to: "2027-03-01"}]}"#, "spec.freezes[0]: 'from' is after 'to'"),
            (#"{requires: [prod]}"#, "spec.requires: an environment cannot require itself"),
        ])
    func badGates(spec: String, expected: String) throws {
        let (_, diagnostics) = try load(Self.executor + Self.env("prod", spec))
        #expect(diagnostics.contains { $0.description.contains(expected) }, "\(diagnostics)")
    }
}
