import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

@Suite("TideEngine: policies and risk")
struct PolicyTests {
    static func policy(_ rules: String) -> String {
        "---\napiVersion: tide/v1\nkind: Policy\nmetadata: {name: guardrails}\nspec:\n  rules:\n\(rules)"
    }

    @Test("risk comes from class, environment and strategy")
    func risk() {
        #expect(RiskLevel.of(.feature, production: true, strategy: .recreate) == .high)
        #expect(RiskLevel.of(.feature, production: true, strategy: .canary) == .medium)
        #expect(RiskLevel.of(.feature, production: false, strategy: .recreate) == .low)
        #expect(RiskLevel.of(.config, production: true, strategy: .recreate) == .medium)
        #expect(RiskLevel.of(.hotfix, production: true, strategy: .recreate) == .high)
        #expect(RiskLevel.of(.rollback, production: true, strategy: .recreate) == .low)
    }

    @Test("a policy demands approval for high-risk production changes, not for low-risk ones")
    func approvalByRisk() async throws {
        let environments =
            GateHarness.environment("prod", "{production: true}")
            + Self.policy("    - match: {production: true, risks: [HIGH]}\n      require: {approval: true}\n")
        let service = GateHarness.service("1.0.0", environments: "{prod: {}}")
        let h = try GateHarness(environments: environments, service: service)
        var pass = try await h.pass(at: monday)
        #expect(pass.deploys.isEmpty)
        #expect(
            pass.outcomes["prod"]?.message
                == "waiting for approval: tide approve api --env prod --version 1.0.0 (policy guardrails)")
        let (_, plan) = try await h.reconciler.plan()
        #expect(plan?.actions.first?.risk == .high)
        await h.approve("prod", "1.0.0", at: monday)
        pass = try await h.pass(at: monday + minute)
        #expect(pass.deploys == ["api@prod 1.0.0"])
        // A config-only change is medium risk: no approval needed.
        try await h.fixture.commit(
            "scale",
            files: [
                "api.yaml": service.replacingOccurrences(
                    of: "hotfix: false", with: "hotfix: false\n  config: {replicas: 3}")
            ])
        pass = try await h.pass(at: monday + 2 * minute)
        #expect(pass.deploys == ["api@prod 1.0.0"])
        #expect(pass.outcomes["prod"]?.classification == .config)
    }

    @Test("a minimum strategy blocks until the service uses one; rollbacks pass unless a rule names them")
    func minimumStrategy() async throws {
        let environments =
            GateHarness.environment("prod", "{production: true}")
            + Self.policy(
                "    - match: {environments: [prod], classes: [FEATURE]}\n      require: {minimumStrategy: canary}\n"
                    + "    - match: {classes: [ROLLBACK]}\n      require: {approval: true}\n")
        let h = try GateHarness(
            environments: environments, service: GateHarness.service("1.0.0", environments: "{prod: {}}"))
        let pass = try await h.pass(at: monday)
        #expect(pass.deploys.isEmpty)
        #expect(
            pass.outcomes["prod"]?.message
                == "policy guardrails requires at least a canary strategy here; api uses recreate")
        #expect(await h.store.liveTarget(TargetID(service: "api", environment: "prod"))?.waitingOn == [.gate(.policy)])
    }

    @Test("a HOTFIX skips bake, but a policy can still demand approval for it")
    func hotfixPolicy() async throws {
        let environments =
            GateHarness.environment("staging", "{}")
            + GateHarness.environment("prod", "{production: true, requires: [staging], bake: 4h}")
            + Self.policy("    - match: {environments: [prod], classes: [HOTFIX]}\n      require: {approval: true}\n")
        let service = { (version: String, hotfix: Bool) in
            GateHarness.service(version, hotfix: hotfix, environments: "{staging: {}, prod: {}}")
        }
        let h = try GateHarness(environments: environments, service: service("1.0.0", false))
        _ = try await h.pass(at: monday)
        _ = try await h.pass(at: monday + 4 * hourSeconds)
        try await h.fixture.commit("hotfix", files: ["api.yaml": service("1.0.1", true)])
        var pass = try await h.pass(at: monday + 5 * hourSeconds)
        #expect(pass.deploys == ["api@staging 1.0.1"])
        #expect(
            pass.outcomes["prod"]?.message
                == "waiting for approval: tide approve api --env prod --version 1.0.1 (policy guardrails)")
        await h.approve("prod", "1.0.1", at: monday + 5 * hourSeconds)
        pass = try await h.pass(at: monday + 5 * hourSeconds + minute)
        #expect(pass.deploys == ["api@prod 1.0.1"], "no 4h bake for a hotfix")
    }

    @Test("policy windows hold matching changes")
    func policyWindows() async throws {
        let environments =
            GateHarness.environment("prod", "{production: true}")
            + Self.policy(
                "    - match: {risks: [HIGH]}\n      require:\n        windows: [{days: [tue], start: \"10:00\", end: \"11:00\"}]\n"
            )
        let h = try GateHarness(
            environments: environments, service: GateHarness.service("1.0.0", environments: "{prod: {}}"))
        var pass = try await h.pass(at: monday)
        #expect(
            pass.outcomes["prod"]?.message
                == "outside the windows of policy guardrails; the next opens at 2027-03-23T10:00:00Z")
        pass = try await h.pass(at: monday + 26.5 * hourSeconds)  // Tuesday 10:30Z
        #expect(pass.deploys == ["api@prod 1.0.0"])
    }
}
