import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

/// What must never happen after a rollout fails (a health check, an analysis, an abort) and Tide rolls back:
/// - a version that never ran healthy on a target is classified ROLLBACK — ROLLBACK passes approval, requires and
///   bake, so an unapproved version would reach production;
/// - the target's live revision stays behind the commit Tide wrote back, so the next change is classified across
///   the revert;
/// - the commit written back changes what another target (another environment) asks for;
/// - a new version is taken by every environment of a pipeline in one pass.
@Suite("TideEngine: a failed rollout never opens the gates")
struct RollbackSafetyTests {
    enum Failure: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case health, analysis, abort
        var testDescription: String { rawValue }
    }

    static let analysis = """
        ---
        apiVersion: tide/v1
        kind: Analysis
        metadata: {name: errors}
        spec:
          metrics:
            - name: error-rate
              provider: {command: {command: ["/usr/local/bin/error-rate"]}}
              successCondition: "result < 0.01"

        """

    static func service(_ version: String, environments: String = "{prod: {}}") -> String {
        """
        apiVersion: tide/v1
        kind: Service
        metadata: {name: api}
        spec:
          executor: x
          version: "\(version)"
          environments: \(environments)
          rollback: {automatic: true, writeBack: revert}
          strategy:
            type: canary
            steps: [{setWeight: 10}, {analysis: errors}, {pause: 5m}]

        """
    }

    static let prodOnly = GateHarness.environment("prod", "{production: true, approval: manual}") + analysis
    static let pipeline =
        GateHarness.environment("dev", "{}")
        + GateHarness.environment("staging", "{requires: [dev], bake: 1h}")
        + GateHarness.environment("prod", "{production: true, requires: [staging], bake: 2h, approval: manual}")
        + analysis

    /// Makes 2.0.0 fail in `environment` the way `failure` says, and runs passes until it is rolled back.
    static func fail(
        _ failure: Failure, in environment: String, h: GateHarness, at date: Date
    ) async throws {
        let id = TargetID(service: "api", environment: environment)
        switch failure {
        case .health:
            h.executor.fail { $0.action == .health && $0.version == "2.0.0" && $0.environment == environment }
        case .analysis:
            h.executor.respond(
                when: { $0.action == .measure && $0.version == "2.0.0" && $0.environment == environment }, with: "0.5")
        case .abort:
            break
        }
        let pass = try await h.pass(at: date)
        if failure == .abort {
            #expect(pass.outcomes[environment]?.result == .progressing)
            _ = try await h.reconciler.control(.abort, service: "api", environment: environment, by: "test")
        }
        let live = try #require(await h.store.liveTarget(id))
        #expect(live.phase == .rolledBack)
        #expect(live.version == "1.0.0")
        h.executor.clearFailures()
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
    }

    @Test(
        "one environment: after a rollback written back to git, a new version waits for approval",
        arguments: Failure.allCases)
    func oneEnvironment(_ failure: Failure) async throws {
        let h = try GateHarness(environments: Self.prodOnly, service: Self.service("1.0.0"))
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        await h.approve("prod", "1.0.0", at: monday)
        var pass = try await h.pass(at: monday)
        #expect(pass.deploys == ["api@prod 1.0.0"])

        try await h.fixture.commit("api 2.0.0", files: ["api.yaml": Self.service("2.0.0")])
        await h.approve("prod", "2.0.0", at: monday + minute)
        try await Self.fail(failure, in: "prod", h: h, at: monday + 2 * minute)

        // Git says what runs: one commit, written by Tide, and the live revision follows it.
        let head = try await h.fixture.head()
        let prod = try #require(await h.store.liveTarget(TargetID(service: "api", environment: "prod")))
        #expect(prod.revision == head)
        let log = try await h.fixture.git("log", "--format=%s", "-3")
        #expect(log.split(separator: "\n").first?.hasPrefix("Revert \"api 2.0.0\"") == true)
        pass = try await h.pass(at: monday + 3 * minute)
        #expect(pass.deploys.isEmpty)
        #expect(pass.outcomes["prod"]?.result == .unchanged)

        // 3.0.0 never ran here: FEATURE, and it waits for its approval like any new version.
        try await h.fixture.commit("api 3.0.0", files: ["api.yaml": Self.service("3.0.0")])
        let plan = try #require(try await h.reconciler.plan().1)
        let action = try #require(plan.actions.first { $0.target.environment == "prod" })
        #expect(action.classification == .feature)
        #expect(action.kind == .wait)
        pass = try await h.pass(at: monday + 4 * minute)
        #expect(pass.deploys.isEmpty)
        #expect(pass.outcomes["prod"]?.message?.contains("waiting for approval") == true)
        await h.approve("prod", "3.0.0", at: monday + 5 * minute)
        pass = try await h.pass(at: monday + 6 * minute)
        #expect(pass.deploys == ["api@prod 3.0.0"])
        #expect(pass.outcomes["prod"]?.classification == .feature)
        pass = try await h.pass(at: monday + 12 * minute)
        #expect(pass.outcomes["prod"]?.result == .deployed)
        // DORA: the new version is planned work, not rework.
        let ledger = await h.store.deployments(DeploymentQuery(limit: 20))
        #expect(ledger.first { $0.version == "3.0.0" }?.classification == .feature)
    }

    @Test(
        "three environments: the failure in prod is pinned in prod only; 3.0.0 walks the gates",
        arguments: Failure.allCases)
    func threeEnvironments(_ failure: Failure) async throws {
        let envs = "{dev: {}, staging: {}, prod: {}}"
        let h = try GateHarness(environments: Self.pipeline, service: Self.service("1.0.0", environments: envs))
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        await h.approve("prod", "1.0.0", at: monday)
        _ = try await h.pass(at: monday)
        _ = try await h.pass(at: monday + hourSeconds)
        var pass = try await h.pass(at: monday + 3 * hourSeconds)
        #expect(pass.deploys == ["api@prod 1.0.0"])

        try await h.fixture.commit("api 2.0.0", files: ["api.yaml": Self.service("2.0.0", environments: envs)])
        await h.approve("prod", "2.0.0", at: monday + 4 * hourSeconds)
        pass = try await h.pass(at: monday + 4 * hourSeconds)
        #expect(pass.deploys == ["api@dev 2.0.0"])
        pass = try await h.pass(at: monday + 4 * hourSeconds + 10 * minute)
        #expect(pass.outcomes["dev"]?.result == .deployed)
        pass = try await h.pass(at: monday + 5 * hourSeconds + 15 * minute)
        #expect(pass.deploys == ["api@staging 2.0.0"])
        pass = try await h.pass(at: monday + 5 * hourSeconds + 25 * minute)
        #expect(pass.outcomes["staging"]?.result == .deployed)
        try await Self.fail(failure, in: "prod", h: h, at: monday + 7 * hourSeconds + 30 * minute)

        // A revert of the shared version would take dev and staging back too: Tide pins prod instead.
        let head = try await h.fixture.head()
        let message = try await h.fixture.git("log", "--format=%B", "-1")
        #expect(message.hasPrefix("Pin api to 1.0.0 in prod: 2.0.0 failed"))
        let desired = try ManifestLoader().load(
            from: GitCommitSource(repository: try Repository.open(at: h.fixture.repoPath), commit: head, root: ""))
        #expect(desired.target(TargetID(service: "api", environment: "prod"))?.version == "1.0.0")
        #expect(desired.target(TargetID(service: "api", environment: "staging"))?.version == "2.0.0")
        #expect(desired.target(TargetID(service: "api", environment: "dev"))?.version == "2.0.0")
        #expect(await h.store.liveTarget(TargetID(service: "api", environment: "prod"))?.revision == head)
        pass = try await h.pass(at: monday + 7 * hourSeconds + 31 * minute)
        #expect(pass.deploys.isEmpty, "dev and staging keep 2.0.0, prod keeps 1.0.0")

        // 3.0.0 for every environment (the pin is replaced, as a person fixing it would): dev takes it, the rest
        // wait for their gates — never all three in one pass.
        try await h.fixture.commit("api 3.0.0", files: ["api.yaml": Self.service("3.0.0", environments: envs)])
        pass = try await h.pass(at: monday + 8 * hourSeconds)
        #expect(pass.deploys == ["api@dev 3.0.0"])
        #expect(pass.outcomes["dev"]?.classification == .feature)
        #expect(pass.outcomes["staging"]?.result == .waiting)
        #expect(pass.outcomes["prod"]?.result == .waiting)
        _ = try await h.pass(at: monday + 8 * hourSeconds + 10 * minute)
        pass = try await h.pass(at: monday + 9 * hourSeconds + 15 * minute)
        #expect(pass.deploys == ["api@staging 3.0.0"])
        _ = try await h.pass(at: monday + 9 * hourSeconds + 25 * minute)
        pass = try await h.pass(at: monday + 11 * hourSeconds + 30 * minute)
        #expect(pass.deploys.isEmpty)
        #expect(pass.outcomes["prod"]?.message?.contains("waiting for approval") == true)
    }

    @Test("a revert that brings back a version that ran healthy is still a ROLLBACK")
    func genuineRevert() async throws {
        let h = try GateHarness(environments: Self.prodOnly, service: Self.service("1.0.0"))
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        await h.approve("prod", "1.0.0", at: monday)
        _ = try await h.pass(at: monday)
        let change = try await h.fixture.commit("api 2.0.0", files: ["api.yaml": Self.service("2.0.0")])
        await h.approve("prod", "2.0.0", at: monday)
        _ = try await h.pass(at: monday + minute)
        var pass = try await h.pass(at: monday + 10 * minute)
        #expect(pass.outcomes["prod"]?.result == .deployed)
        _ = try await h.fixture.revert(change)
        pass = try await h.pass(at: monday + 20 * minute)
        #expect(pass.deploys == ["api@prod 1.0.0"], "no approval needed to go back to what ran")
        #expect(pass.outcomes["prod"]?.classification == .rollback)
    }

    @Test("a held version says exactly what retries it; retry after a write-back says git moved on")
    func heldAndRetry() async throws {
        let h = try GateHarness(environments: Self.prodOnly, service: Self.service("1.0.0"))
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        await h.approve("prod", "1.0.0", at: monday)
        _ = try await h.pass(at: monday)
        try await h.fixture.commit("api 2.0.0", files: ["api.yaml": Self.service("2.0.0")])
        await h.approve("prod", "2.0.0", at: monday)
        try await Self.fail(.abort, in: "prod", h: h, at: monday + minute)
        do {
            _ = try await h.reconciler.control(.retry, service: "api", environment: "prod", by: "test")
            Issue.record("retry should refuse: git asks for 1.0.0 after the write-back")
        } catch let error as ControlError {
            #expect(error.description.contains("git asks for 1.0.0 now, not the failed 2.0.0"))
        }
        do {
            _ = try await h.reconciler.control(.promote(full: true), service: "api", environment: "prod", by: "test")
            Issue.record("promote should refuse: nothing is rolling out")
        } catch let error as ControlError {
            #expect(error.description.contains("it runs 1.0.0 (RolledBack); 2.0.0 failed: aborted by test"))
        }
    }

    @Test("an empty commit in the range retries nothing, and the hold says what will")
    func holdMessage() async throws {
        let h = try GateHarness(
            environments: GateHarness.environment("prod", "{}"),
            service: GateHarness.service("1.0.0", environments: "{prod: {}}"))
        _ = try await h.pass(at: monday)
        h.executor.fail { $0.action == .health && $0.version == "2.0.0" }
        try await h.fixture.commit(
            "2.0.0", files: ["api.yaml": GateHarness.service("2.0.0", environments: "{prod: {}}")])
        _ = try await h.pass(at: monday + minute)
        h.executor.clearFailures()
        try await h.fixture.commit("touch", files: ["notes.txt": "nothing\n"])
        let pass = try await h.pass(at: monday + 2 * minute)
        #expect(pass.deploys.isEmpty)
        #expect(pass.outcomes["prod"]?.result == .held)
        #expect(
            pass.outcomes["prod"]?.message?.contains(
                "tide retry api --env prod tries it again, and so does a commit that changes its version or config")
                == true)
        _ = try await h.reconciler.control(.retry, service: "api", environment: "prod", by: "test")
        #expect(try await h.pass(at: monday + 3 * minute).deploys == ["api@prod 2.0.0"])
    }

    @Test("a detached HEAD is refused without --branch, and works with it")
    func detachedHead() async throws {
        let h = try GateHarness(environments: Self.prodOnly, service: Self.service("1.0.0"))
        await h.approve("prod", "1.0.0", at: monday)
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        _ = try await h.pass(at: monday)
        try await h.fixture.commit("api 2.0.0", files: ["api.yaml": Self.service("2.0.0")])
        _ = try await h.fixture.git("checkout", "--quiet", "--detach", "HEAD~1")
        do {
            _ = try await h.pass(at: monday + minute)
            Issue.record("a detached HEAD must be refused")
        } catch let error as EngineError {
            #expect(error.description.contains("HEAD is detached"))
            #expect(error.description.contains("--branch"))
        }
        #expect(h.executor.requests.isEmpty)
        let tracking = try h.engine.makeReconciler(at: h.fixture.repoPath, branch: "main")
        let plan = try #require(try await tracking.plan().1)
        #expect(plan.actions.first?.toVersion == "2.0.0")
    }

    @Test("an analysis whose every measurement is an error never passes")
    func errorsNeverPass() async throws {
        let h = try GateHarness(environments: Self.prodOnly, service: Self.service("1.0.0"))
        await h.approve("prod", "1.0.0", at: monday)
        _ = try await h.pass(at: monday)
        try await h.fixture.commit("api 2.0.0", files: ["api.yaml": Self.service("2.0.0")])
        await h.approve("prod", "2.0.0", at: monday)
        h.executor.fail { $0.action == .measure }
        // An error is never a measurement: the analysis measures again, and errors beyond consecutiveErrorLimit
        // (4) fail it — the canary goes back to stable, never forward.
        var pass = try await h.pass(at: monday + minute)
        #expect(pass.outcomes["prod"]?.result == .progressing)
        var promoted = false
        for round in 2...6 {
            pass = try await h.pass(at: monday + Double(round) * 10 * minute)
            promoted = promoted || h.executor.requests.contains { $0.action == .promote }
        }
        #expect(!promoted, "never promoted")
        let live = try #require(await h.store.liveTarget(TargetID(service: "api", environment: "prod")))
        #expect(live.phase == .rolledBack && live.version == "1.0.0", "\(live.phase)")
        let failed = await h.store.events(
            EventQuery(service: "api", environment: "prod", kinds: [.deploymentFailed], limit: 5))
        #expect(failed.first?.message.contains("measurement errors in a row") == true, "\(failed.map(\.message))")
    }

    @Test("an analysis whose conditions cannot be evaluated never passes", arguments: ["\"text\"", "{\"v\": [1]}"])
    func evaluationErrorsNeverPass(_ answer: String) async throws {
        let condition = answer.hasPrefix("{") ? "result.v[1e300] < 1" : "result < 0.01"
        let h = try GateHarness(
            environments: GateHarness.environment("prod", "{}")
                + Self.analysis.replacingOccurrences(of: "result < 0.01", with: condition),
            service: Self.service("1.0.0"))
        _ = try await h.pass(at: monday)
        try await h.fixture.commit("api 2.0.0", files: ["api.yaml": Self.service("2.0.0")])
        h.executor.respond(when: { $0.action == .measure }, with: answer)
        let pass = try await h.pass(at: monday + minute)
        #expect(pass.outcomes["prod"]?.result == .progressing)
        #expect(await h.store.liveTarget(TargetID(service: "api", environment: "prod"))?.rollout?.weight == 10)
        #expect(!h.executor.requests.contains { $0.action == .promote })
    }

    @Test("a rollback gives the executor the stable side's config and revision, not the failed change's")
    func rollbackCarriesStableConfig() async throws {
        let service = { (version: String, replicas: Int) in
            Self.service(version).replacingOccurrences(
                of: "  executor: x\n", with: "  executor: x\n  config: {replicas: \(replicas)}\n")
        }
        let h = try GateHarness(
            environments: GateHarness.environment("prod", "{}") + Self.analysis, service: service("1.0.0", 1))
        _ = try await h.pass(at: monday)
        let stableRevision = try await h.fixture.head()
        try await h.fixture.commit("2.0.0 with 5 replicas", files: ["api.yaml": service("2.0.0", 5)])
        h.executor.fail { $0.action == .health && $0.version == "2.0.0" }
        _ = try await h.pass(at: monday + minute)
        let rollback = try #require(h.executor.requests.first { $0.action == .rollback })
        #expect(rollback.version == "1.0.0")
        #expect(rollback.config == .object(["replicas": .int(1)]), "\(rollback.config)")
        #expect(rollback.revision == stableRevision.hex)
        let check = try #require(h.executor.requests.last { $0.action == .health })
        #expect(check.version == "1.0.0" && check.config == .object(["replicas": .int(1)]))
    }

    @Test("a write-back never reverts files that are not manifests: a commit that also changed a script is pinned")
    func writeBackLeavesOtherFiles() async throws {
        let h = try GateHarness(
            environments: GateHarness.environment("prod", "{}") + Self.analysis, service: Self.service("1.0.0"))
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        _ = try await h.pass(at: monday)
        try await h.fixture.commit(
            "2.0.0, a runbook and a script", files: ["api.yaml": Self.service("2.0.0"), "RUNBOOK.md": "call Ada\n"])
        h.executor.fail { $0.action == .health && $0.version == "2.0.0" }
        _ = try await h.pass(at: monday + minute)
        #expect(try await h.fixture.git("log", "-1", "--format=%s").hasPrefix("Pin api to 1.0.0 in prod"))
        #expect(try await h.fixture.git("show", "HEAD:RUNBOOK.md") == "call Ada\n")
        #expect(try await h.fixture.git("status", "--porcelain") == "")
    }

    @Test("tide rollback of one environment never takes the others back: a shared version is pinned")
    func rollbackCommandPinsSharedVersion() async throws {
        let envs = "{dev: {}, prod: {}}"
        let h = try GateHarness(
            environments: GateHarness.environment("dev", "{}") + GateHarness.environment("prod", "{}") + Self.analysis,
            service: Self.service("1.0.0", environments: envs))
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        _ = try await h.pass(at: monday)
        try await h.fixture.commit("2.0.0", files: ["api.yaml": Self.service("2.0.0", environments: envs)])
        _ = try await h.pass(at: monday + minute)
        _ = try await h.pass(at: monday + 10 * minute)
        #expect(await h.store.liveTarget(TargetID(service: "api", environment: "prod"))?.version == "2.0.0")
        let written = try await h.reconciler.branchWriter.rollbackCommit(service: "api", environment: "prod")
        #expect(written.count == 1)
        #expect(try await h.fixture.git("log", "-1", "--format=%s").hasPrefix("Pin api to 1.0.0 in prod"))
        let plan = try #require(try await h.reconciler.plan().1)
        #expect(plan.pending.map(\.target.description) == ["api@prod"], "dev keeps 2.0.0")
        #expect(plan.pending.first?.classification == .rollback)
        #expect(plan.pins.map(\.target.description) == ["api@prod"])
    }
}
