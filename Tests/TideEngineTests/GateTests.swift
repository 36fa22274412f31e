import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

/// 2027-03-22T08:00:00Z, a Monday (CET, before the switch to summer time on 2027-03-28).
let monday = Date(timeIntervalSince1970: 1_805_702_400)
let minute = 60.0
let hourSeconds = 3600.0

/// The gate suites' harness: one service, api, on the given environments; each pass at a date of its own.
@dynamicMemberLookup
struct GateHarness {
    let engine: EngineHarness<InMemoryStateStore>

    init(environments: String, service: String) throws {
        engine = try EngineHarness(
            store: .inMemory,
            files: [
                "base.yaml": commandExecutorManifest("x") + environments,
                "api.yaml": service,
            ],
            clock: TestClock(monday))
    }

    subscript<Value>(dynamicMember member: KeyPath<EngineHarness<InMemoryStateStore>, Value>) -> Value {
        engine[keyPath: member]
    }

    static func environment(_ name: String, _ spec: String) -> String {
        "---\napiVersion: tide/v1\nkind: Environment\nmetadata: {name: \(name)}\nspec: \(spec)\n"
    }

    static func service(
        _ version: String, hotfix: Bool = false, environments: String = "{dev: {}, staging: {}, prod: {}}"
    )
        -> String
    {
        """
        apiVersion: tide/v1
        kind: Service
        metadata: {name: api}
        spec:
          executor: x
          version: "\(version)"
          hotfix: \(hotfix)
          environments: \(environments)

        """
    }

    /// One pass at `date`; returns "deploy api@env v" for each deploy call and the outcomes by target.
    func pass(at date: Date) async throws -> (deploys: [String], outcomes: [String: TargetOutcome]) {
        let report = try await engine.pass(at: date)
        let deploys = engine.executor.requests.filter { $0.action == .deploy }.map {
            "\($0.service)@\($0.environment) \($0.version)"
        }
        return (deploys, Dictionary(uniqueKeysWithValues: report.outcomes.map { ($0.target.environment, $0) }))
    }

    /// `tide approve api --env ENVIRONMENT --version VERSION` at `date`: for what the branch head asks there (its
    /// config and executor).
    func approve(_ environment: String, _ version: String, at date: Date) async {
        engine.clock.set(date)
        do {
            _ = try await engine.reconciler.promoter.approve(
                service: "api", environment: environment, version: version, by: "test")
        } catch {
            Issue.record("approve \(version) in \(environment): \(error)")
        }
    }
}

@Suite("TideEngine: environment gates")
struct GateTests {
    static let pipeline =
        GateHarness.environment("dev", "{}")
        + GateHarness.environment("staging", "{requires: [dev], bake: 1h}")
        + GateHarness.environment("prod", "{production: true, requires: [staging], bake: 2h, approval: manual}")

    @Test("a version walks dev → staging → prod with bake and approval")
    func promotionWalk() async throws {
        let h = try GateHarness(environments: Self.pipeline, service: GateHarness.service("1.0.0"))
        await h.approve("prod", "1.0.0", at: monday)
        // First version: dev deploys; staging waits for its bake, prod for staging.
        var pass = try await h.pass(at: monday)
        #expect(pass.deploys == ["api@dev 1.0.0"])
        #expect(pass.outcomes["staging"]?.result == .waiting)
        #expect(
            pass.outcomes["staging"]?.message?.contains("1.0.0 bakes in dev for 1h, until 2027-03-22T09:00:00Z") == true
        )
        #expect(
            pass.outcomes["prod"]?.message?.contains("api@staging must run 1.0.0 healthy first; it runs nothing")
                == true)
        #expect(await h.store.liveTarget(TargetID(service: "api", environment: "prod"))?.phase == .pending)

        pass = try await h.pass(at: monday + 30 * minute)
        #expect(pass.deploys.isEmpty)
        pass = try await h.pass(at: monday + hourSeconds)
        #expect(pass.deploys == ["api@staging 1.0.0"])
        #expect(pass.outcomes["prod"]?.message?.contains("bakes in staging for 2h") == true)
        pass = try await h.pass(at: monday + 3 * hourSeconds)
        #expect(pass.deploys == ["api@prod 1.0.0"])

        // The next version needs a fresh approval for prod.
        try await h.fixture.commit("1.1.0", files: ["api.yaml": GateHarness.service("1.1.0")])
        pass = try await h.pass(at: monday + 4 * hourSeconds)
        #expect(pass.deploys == ["api@dev 1.1.0"])
        pass = try await h.pass(at: monday + 5 * hourSeconds)
        #expect(pass.deploys == ["api@staging 1.1.0"])
        pass = try await h.pass(at: monday + 7 * hourSeconds)
        #expect(pass.deploys.isEmpty)
        #expect(pass.outcomes["prod"]?.message == "waiting for approval: tide approve api --env prod --version 1.1.0")
        let prod = await h.store.liveTarget(TargetID(service: "api", environment: "prod"))
        #expect(prod?.version == "1.0.0")
        #expect(prod?.waiting?.contains("waiting for approval") == true)
        await h.approve("prod", "1.1.0", at: monday + 7 * hourSeconds)
        pass = try await h.pass(at: monday + 7 * hourSeconds + minute)
        #expect(pass.deploys == ["api@prod 1.1.0"])
        #expect(await h.store.liveTarget(TargetID(service: "api", environment: "prod"))?.waiting == nil)

        // Waiting is recorded once per reason, not once per pass.
        let waits = await h.store.events(EventQuery(environment: "prod", kinds: [.gateWaiting], limit: 100))
        #expect(waits.count == 5)
    }

    @Test("with no bake, a version goes through every environment in one pass")
    func samePass() async throws {
        let environments =
            GateHarness.environment("dev", "{}") + GateHarness.environment("staging", "{requires: [dev]}")
            + GateHarness.environment("prod", "{requires: [staging]}")
        let h = try GateHarness(environments: environments, service: GateHarness.service("1.0.0"))
        let pass = try await h.pass(at: monday)
        #expect(pass.deploys == ["api@dev 1.0.0", "api@staging 1.0.0", "api@prod 1.0.0"])
    }

    @Test("a HOTFIX skips bake but not approval")
    func hotfix() async throws {
        let h = try GateHarness(environments: Self.pipeline, service: GateHarness.service("1.0.0"))
        await h.approve("prod", "1.0.0", at: monday)
        _ = try await h.pass(at: monday)
        _ = try await h.pass(at: monday + hourSeconds)
        _ = try await h.pass(at: monday + 3 * hourSeconds)
        try await h.fixture.commit("hotfix", files: ["api.yaml": GateHarness.service("1.0.1", hotfix: true)])
        var pass = try await h.pass(at: monday + 4 * hourSeconds)
        #expect(pass.deploys == ["api@dev 1.0.1", "api@staging 1.0.1"])
        #expect(pass.outcomes["prod"]?.classification == .hotfix)
        #expect(pass.outcomes["prod"]?.message == "waiting for approval: tide approve api --env prod --version 1.0.1")
        await h.approve("prod", "1.0.1", at: monday + 4 * hourSeconds)
        pass = try await h.pass(at: monday + 4 * hourSeconds + minute)
        #expect(pass.deploys == ["api@prod 1.0.1"])
    }

    @Test("outside a window nothing starts, and the plan says when the next one opens; rollbacks pass")
    func windows() async throws {
        let environments = GateHarness.environment(
            "prod",
            #"{windows: [{days: [mon, tue, wed, thu, fri], start: "09:00", end: "16:00", timezone: Europe/Berlin}]}"#)
        let service = GateHarness.service("1.0.0", environments: "{prod: {}}")
        let h = try GateHarness(environments: environments, service: service)
        // Friday 2027-03-26 16:30 UTC = 17:30 CET: closed until Monday 09:00 CEST, after the clocks changed.
        let friday = monday + 4 * 86_400 + 8.5 * hourSeconds
        var pass = try await h.pass(at: friday)
        #expect(pass.deploys.isEmpty)
        #expect(
            pass.outcomes["prod"]?.message
                == "outside the deployment windows of prod; the next opens at 2027-03-29T07:00:00Z")
        let (_, plan) = try await h.reconciler.plan()
        #expect(plan?.actions.first?.gates.first?.until == Date(timeIntervalSince1970: 1_806_303_600))
        pass = try await h.pass(at: Date(timeIntervalSince1970: 1_806_303_600))
        #expect(pass.deploys == ["api@prod 1.0.0"])

        let bump = try await h.fixture.commit(
            "1.1.0", files: ["api.yaml": GateHarness.service("1.1.0", environments: "{prod: {}}")])
        pass = try await h.pass(at: Date(timeIntervalSince1970: 1_806_303_600) + 3 * hourSeconds)
        #expect(pass.deploys == ["api@prod 1.1.0"])
        // Saturday: a revert still goes out.
        try await h.fixture.revert(bump)
        pass = try await h.pass(at: Date(timeIntervalSince1970: 1_806_303_600) + 5 * 86_400)
        #expect(pass.deploys == ["api@prod 1.0.0"])
        #expect(pass.outcomes["prod"]?.classification == .rollback)
    }

    @Test("window arithmetic across the change to summer time, and past midnight")
    func windowArithmetic() throws {
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        let location = SourceLocation(file: "x", line: 1, column: 1)
        let office = EnvironmentManifest.Window(
            weekdays: [2, 3, 4, 5, 6], start: 9 * 60, end: 16 * 60, timeZone: berlin, location: location)
        // Winter: 09:30 CET is 08:30 UTC.
        #expect(GateEvaluator.contains(office, monday + 30 * minute))
        #expect(!GateEvaluator.contains(office, monday - 30 * minute))
        // Summer (Monday 2027-03-29): 09:30 CEST is 07:30 UTC; 16:30 CEST (14:30 UTC) is closed.
        let summerMonday = Date(timeIntervalSince1970: 1_806_303_600)
        #expect(GateEvaluator.contains(office, summerMonday + 30 * minute))
        #expect(!GateEvaluator.contains(office, summerMonday - 30 * minute))
        #expect(!GateEvaluator.contains(office, summerMonday + 7.5 * hourSeconds))
        #expect(GateEvaluator.nextOpening(office, after: summerMonday + 8 * hourSeconds) == summerMonday + 86_400)

        let night = EnvironmentManifest.Window(
            weekdays: [7], start: 22 * 60, end: 2 * 60, timeZone: TimeZone(identifier: "UTC")!, location: location)
        let saturday = monday + 5 * 86_400 - 8 * hourSeconds  // Saturday 00:00 UTC
        #expect(GateEvaluator.contains(night, saturday + 23 * hourSeconds))
        #expect(GateEvaluator.contains(night, saturday + 25 * hourSeconds))  // Sunday 01:00
        #expect(!GateEvaluator.contains(night, saturday + 27 * hourSeconds))
        #expect(!GateEvaluator.contains(night, saturday + 1 * hourSeconds))  // Saturday 01:00 belongs to Friday
    }

    @Test("nothing starts in a freeze; a rollback does")
    func freeze() async throws {
        let environments = GateHarness.environment(
            "prod", #"{freezes: [{from: "2027-03-20", to: "2027-03-23", reason: "quarter close"}]}"#)
        let h = try GateHarness(
            environments: environments, service: GateHarness.service("1.0.0", environments: "{prod: {}}"))
        var pass = try await h.pass(at: monday - 3 * 86_400)
        #expect(pass.deploys == ["api@prod 1.0.0"])
        let bump = try await h.fixture.commit(
            "2.0.0", files: ["api.yaml": GateHarness.service("2.0.0", environments: "{prod: {}}")])
        pass = try await h.pass(at: monday)
        #expect(pass.deploys.isEmpty)
        #expect(pass.outcomes["prod"]?.message == "frozen until 2027-03-24T00:00:00Z: quarter close")
        pass = try await h.pass(at: Date(timeIntervalSince1970: 1_805_932_800))  // 2027-03-24T00:00Z
        #expect(pass.deploys == ["api@prod 2.0.0"])
        _ = bump
    }

    @Test("a rollback inside a freeze goes out")
    func rollbackInFreeze() async throws {
        let environments = GateHarness.environment(
            "prod", #"{freezes: [{from: "2027-03-22", to: "2027-03-23"}]}"#)
        let h = try GateHarness(
            environments: environments, service: GateHarness.service("1.0.0", environments: "{prod: {}}"))
        _ = try await h.pass(at: monday - 3 * 86_400)
        let bump = try await h.fixture.commit(
            "2.0.0", files: ["api.yaml": GateHarness.service("2.0.0", environments: "{prod: {}}")])
        _ = try await h.pass(at: monday - 2 * 86_400)
        try await h.fixture.revert(bump)
        let pass = try await h.pass(at: monday)
        #expect(pass.deploys == ["api@prod 1.0.0"])
    }
}
