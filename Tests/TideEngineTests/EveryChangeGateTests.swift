import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

/// What must never happen (the list on `GateEvaluator.gates`), tried one way after another: a change of any class
/// — config only, executor only, a revert to something that never ran, a rename, a config change during a bake,
/// two quick commits — reaching an environment past a gate its manifests set; an environment running something
/// its `requires` environment never ran healthy for the bake; an old approval satisfying a new change.
@Suite("TideEngine: gates cover every change, not only a new version")
struct EveryChangeGateTests {
    static let pipeline =
        GateHarness.environment("dev", "{}")
        + GateHarness.environment("staging", "{requires: [dev], bake: 1h}")
        + GateHarness.environment("prod", "{production: true, requires: [staging], bake: 2h, approval: manual}")

    /// An executor that runs `./bin/deploy` from the revision (the recording executor answers for it).
    static let executor = """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: x}
        spec: {type: command, command: [./bin/deploy]}

        """

    static func service(
        _ name: String = "api", version: String, config: String, strategy: String = "{type: recreate}"
    ) -> String {
        """
        apiVersion: tide/v1
        kind: Service
        metadata: {name: \(name)}
        spec:
          executor: x
          version: "\(version)"
          config: \(config)
          strategy: \(strategy)
          environments: {dev: {}, staging: {}, prod: {}}

        """
    }

    struct Pipeline {
        let engine: EngineHarness<InMemoryStateStore>

        init(environments: String = EveryChangeGateTests.pipeline, service: String) throws {
            engine = try EngineHarness(store: .inMemory, files: [:], commit: nil, clock: TestClock(monday))
            try engine.fixture.write("bin/deploy", "#!/bin/sh\necho v1\n", executable: true)
            try engine.fixture.commit(
                "initial", files: ["base.yaml": EveryChangeGateTests.executor + environments, "api.yaml": service])
        }

        /// One pass at `date`: "ENV VERSION" for each deploy, and the outcomes by environment (service api).
        func pass(at date: Date) async throws -> (deploys: [String], outcomes: [String: TargetOutcome]) {
            let report = try await engine.pass(at: date)
            let deploys = engine.executor.requests.filter { $0.action == .deploy }.map {
                "\($0.service)@\($0.environment) \($0.version)"
            }
            var outcomes: [String: TargetOutcome] = [:]
            for outcome in report.outcomes where outcome.target.service == "api" {
                outcomes[outcome.target.environment] = outcome
            }
            return (deploys, outcomes)
        }

        func approve(_ environment: String, _ version: String, service: String = "api", at date: Date) async throws {
            engine.clock.set(date)
            _ = try await engine.reconciler.promoter.approve(
                service: service, environment: environment, version: version, by: "approver")
        }

        func live(_ environment: String, _ service: String = "api") async -> LiveTarget? {
            await engine.store.liveTarget(TargetID(service: service, environment: environment))
        }

        /// Walks 1.0.0 with `config` through dev, staging and prod (approved), starting at `monday`.
        func walk(version: String = "1.0.0", from start: Date = monday) async throws {
            try await approve("prod", version, at: start)
            #expect(try await pass(at: start).deploys == ["api@dev \(version)"])
            #expect(try await pass(at: start + hourSeconds).deploys == ["api@staging \(version)"])
            #expect(try await pass(at: start + 3 * hourSeconds).deploys == ["api@prod \(version)"])
        }
    }

    @Test("a config-only change walks dev → staging (bake) → prod (bake, and an approval of that config)")
    func configOnly() async throws {
        let p = try Pipeline(service: Self.service(version: "1.5.0", config: "{replicas: 3}"))
        try await p.walk(version: "1.5.0")
        let before = try #require(await p.live("prod")).configDigest

        try await p.engine.fixture.commit(
            "config only", files: ["api.yaml": Self.service(version: "1.5.0", config: "{replicas: 4}")])
        let start = monday + 10 * hourSeconds
        var pass = try await p.pass(at: start)
        #expect(pass.deploys == ["api@dev 1.5.0"], "only dev, never staging and prod in the same second")
        #expect(pass.outcomes["dev"]?.classification == .config)
        #expect(pass.outcomes["staging"]?.result == .waiting)
        #expect(pass.outcomes["staging"]?.message?.contains("1.5.0 bakes in dev for 1h") == true)
        #expect(pass.outcomes["prod"]?.result == .waiting)
        #expect(
            pass.outcomes["prod"]?.message?.contains(
                "api@staging must run 1.5.0 healthy first with this change's config")
                == true, "\(pass.outcomes["prod"]?.message ?? "")")

        pass = try await p.pass(at: start + hourSeconds)
        #expect(pass.deploys == ["api@staging 1.5.0"])
        // Staging runs the new config now, but not for its bake yet.
        pass = try await p.pass(at: start + 2 * hourSeconds)
        #expect(pass.deploys.isEmpty)
        #expect(pass.outcomes["prod"]?.message?.contains("1.5.0 bakes in staging for 2h") == true)
        // Baked: the approval of 1.5.0 was for the old config, so the config change waits for its own.
        pass = try await p.pass(at: start + 3 * hourSeconds)
        #expect(pass.deploys.isEmpty)
        let waiting = pass.outcomes["prod"]?.message ?? ""
        #expect(waiting.contains("waiting for approval: tide approve api --env prod --version 1.5.0"), "\(waiting)")
        #expect(waiting.contains("was for another config or executor"), "\(waiting)")
        #expect(await p.live("prod")?.configDigest == before)

        try await p.approve("prod", "1.5.0", at: start + 3 * hourSeconds)
        pass = try await p.pass(at: start + 3 * hourSeconds + minute)
        #expect(pass.deploys == ["api@prod 1.5.0"])
        #expect(pass.outcomes["prod"]?.classification == .config)
        #expect(await p.live("prod")?.configDigest != before)
    }

    @Test("a Policy on CONFIG is met only by an approval of that config, not by the version's earlier approval")
    func policyOnConfig() async throws {
        let environments =
            GateHarness.environment("staging", "{}")
            + GateHarness.environment("prod", "{production: true, requires: [staging]}")
            + "---\napiVersion: tide/v1\nkind: Policy\nmetadata: {name: config-sign-off}\nspec:\n  rules:\n"
            + "    - match: {production: true, classes: [CONFIG]}\n      require: {approval: true}\n"
        let service = { (config: String) in
            """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: api}
            spec: {executor: x, version: "1.5.0", config: \(config), environments: {staging: {}, prod: {}}}

            """
        }
        let p = try Pipeline(environments: environments, service: service("{a: 1}"))
        // The first version is a FEATURE: the policy does not apply; an approval of 1.5.0 is recorded anyway.
        try await p.approve("prod", "1.5.0", at: monday)
        #expect(try await p.pass(at: monday).deploys == ["api@staging 1.5.0", "api@prod 1.5.0"])

        for (index, config) in ["{a: 2}", "{a: 3}"].enumerated() {
            try await p.engine.fixture.commit("config \(config)", files: ["api.yaml": service(config)])
            let at = monday + Double(index + 1) * hourSeconds
            let pass = try await p.pass(at: at)
            #expect(pass.deploys == ["api@staging 1.5.0"], "\(config): staging only")
            #expect(pass.outcomes["prod"]?.result == .waiting)
            #expect(pass.outcomes["prod"]?.message?.contains("policy config-sign-off") == true)
            try await p.approve("prod", "1.5.0", at: at + minute)
            #expect(try await p.pass(at: at + 2 * minute).deploys == ["api@prod 1.5.0"])
        }
    }

    @Test("an executor-only change (a script of the revision) is a CONFIG deployment through every gate")
    func executorOnly() async throws {
        let p = try Pipeline(service: Self.service(version: "1.0.0", config: "{}"))
        try await p.walk()
        let released = try #require(await p.live("prod")?.release)

        try p.engine.fixture.write("bin/deploy", "#!/bin/sh\necho v2\n", executable: true)
        try await p.engine.fixture.commit("deploy script v2")
        let start = monday + 10 * hourSeconds
        var pass = try await p.pass(at: start)
        #expect(pass.deploys == ["api@dev 1.0.0"])
        #expect(pass.outcomes["dev"]?.classification == .config)
        #expect(pass.outcomes["dev"]?.message?.contains("executor 'x' changed") == true)
        #expect(pass.outcomes["prod"]?.message?.contains("with this change's executor") == true)
        pass = try await p.pass(at: start + hourSeconds)
        #expect(pass.deploys == ["api@staging 1.0.0"])
        pass = try await p.pass(at: start + 3 * hourSeconds)
        #expect(pass.deploys.isEmpty, "the approval of 1.0.0 was for the old executor")
        #expect(pass.outcomes["prod"]?.message?.contains("waiting for approval") == true)
        try await p.approve("prod", "1.0.0", at: start + 3 * hourSeconds)
        pass = try await p.pass(at: start + 3 * hourSeconds + minute)
        #expect(pass.deploys == ["api@prod 1.0.0"])
        let now = try #require(await p.live("prod")?.release)
        #expect(now.executorDigest != released.executorDigest)
        #expect(now.baseConfigDigest == released.baseConfigDigest)

        // A file beside the script is part of its unit too; a file elsewhere is not.
        try p.engine.fixture.write("README.md", "docs\n")
        try await p.engine.fixture.commit("docs")
        #expect(try await p.pass(at: start + 4 * hourSeconds).deploys.isEmpty)
        try p.engine.fixture.write("bin/lib.sh", "helper=1\n")
        try await p.engine.fixture.commit("a helper beside the script")
        #expect(try await p.pass(at: start + 5 * hourSeconds).deploys == ["api@dev 1.0.0"])
    }

    @Test("a strategy-only or analysis-only change deploys nothing and opens no gate")
    func strategyAndAnalysisOnly() async throws {
        let analysis = { (limit: String) in
            "---\napiVersion: tide/v1\nkind: Analysis\nmetadata: {name: ok}\nspec:\n  metrics:\n"
                + "    - name: m\n      provider: {command: {command: [/bin/echo, '1']}}\n      successCondition: \"result < \(limit)\"\n"
        }
        let canary = { (weight: Int) in "{type: canary, steps: [{setWeight: \(weight)}, {analysis: ok}]}" }
        let p = try Pipeline(
            environments: Self.pipeline + analysis("2"),
            service: Self.service(version: "1.0.0", config: "{}", strategy: canary(10)))
        p.engine.executor.respond(when: { $0.action == .measure }, with: "1")
        try await p.walk()
        let events = await p.engine.store.events(EventQuery(limit: 1000)).count

        try await p.engine.fixture.commit(
            "steps", files: ["api.yaml": Self.service(version: "1.0.0", config: "{}", strategy: canary(30))])
        var pass = try await p.pass(at: monday + 10 * hourSeconds)
        #expect(pass.deploys.isEmpty && p.engine.executor.requests.isEmpty)
        #expect(pass.outcomes.values.allSatisfy { $0.result == .unchanged })
        try await p.engine.fixture.commit(
            "analysis", files: ["base.yaml": Self.executor + Self.pipeline + analysis("5")])
        pass = try await p.pass(at: monday + 11 * hourSeconds)
        #expect(pass.deploys.isEmpty && p.engine.executor.requests.isEmpty)
        let deployments = await p.engine.store.events(EventQuery(kinds: [.deploymentStarted], limit: 1000))
        #expect(deployments.count == 3, "only the first walk deployed")
        #expect(await p.engine.store.events(EventQuery(limit: 1000)).count >= events)
    }

    @Test("a revert to an older version that never ran here with this config waits for an approval of it")
    func revertToUnprovenOlderVersion() async throws {
        let p = try Pipeline(service: Self.service(version: "1.0.0", config: "{a: 1}"))
        try await p.walk()
        try await p.engine.fixture.commit(
            "2.0.0", files: ["api.yaml": Self.service(version: "2.0.0", config: "{a: 1}")])
        try await p.approve("prod", "2.0.0", at: monday + 10 * hourSeconds)
        _ = try await p.pass(at: monday + 10 * hourSeconds)
        _ = try await p.pass(at: monday + 11 * hourSeconds)
        #expect(try await p.pass(at: monday + 13 * hourSeconds).deploys == ["api@prod 2.0.0"])

        // Back to 1.0.0, but with a config 1.0.0 never ran with: not a ROLLBACK, and 1.0.0's approval (for
        // {a: 1}) does not cover it.
        try await p.engine.fixture.commit(
            "back to 1.0.0, new config", files: ["api.yaml": Self.service(version: "1.0.0", config: "{a: 2}")])
        let start = monday + 20 * hourSeconds
        var pass = try await p.pass(at: start)
        #expect(pass.deploys == ["api@dev 1.0.0"])
        #expect(pass.outcomes["dev"]?.classification != .rollback)
        _ = try await p.pass(at: start + hourSeconds)
        pass = try await p.pass(at: start + 3 * hourSeconds)
        #expect(pass.deploys.isEmpty, "\(pass)")
        #expect(pass.outcomes["prod"]?.message?.contains("waiting for approval") == true)
        #expect(await p.live("prod")?.version == "2.0.0")

        // A real rollback (what ran healthy here, as it ran) passes every gate.
        try await p.engine.fixture.commit(
            "back to 1.0.0 as it ran", files: ["api.yaml": Self.service(version: "1.0.0", config: "{a: 1}")])
        pass = try await p.pass(at: start + 4 * hourSeconds)
        #expect(pass.deploys.contains("api@prod 1.0.0"))
        #expect(pass.outcomes["prod"]?.classification == .rollback)
    }

    @Test("a rename is a new target: it walks every environment, and the old name's approval does not count")
    func rename() async throws {
        let p = try Pipeline(service: Self.service(version: "1.0.0", config: "{}"))
        try await p.walk()
        try await p.engine.fixture.commit(
            "rename", files: ["api.yaml": Self.service("web", version: "1.0.0", config: "{}")])
        let start = monday + 10 * hourSeconds
        var pass = try await p.pass(at: start)
        #expect(pass.deploys == ["web@dev 1.0.0"])
        pass = try await p.pass(at: start + hourSeconds)
        #expect(pass.deploys == ["web@staging 1.0.0"])
        pass = try await p.pass(at: start + 3 * hourSeconds)
        #expect(pass.deploys.isEmpty, "web@prod waits for its own approval")
        try await p.approve("prod", "1.0.0", service: "web", at: start + 3 * hourSeconds)
        pass = try await p.pass(at: start + 3 * hourSeconds + minute)
        #expect(pass.deploys == ["web@prod 1.0.0"])
    }

    @Test("a config change during staging's bake: prod takes neither config before staging baked the new one")
    func configChangeDuringBake() async throws {
        let p = try Pipeline(service: Self.service(version: "1.0.0", config: "{a: 1}"))
        try await p.walk()
        try await p.engine.fixture.commit("a: 2", files: ["api.yaml": Self.service(version: "1.0.0", config: "{a: 2}")])
        let start = monday + 10 * hourSeconds
        #expect(try await p.pass(at: start).deploys == ["api@dev 1.0.0"])
        #expect(try await p.pass(at: start + hourSeconds).deploys == ["api@staging 1.0.0"])
        try await p.approve("prod", "1.0.0", at: start + hourSeconds)
        // Half-way through staging's bake of {a: 2}, {a: 3} arrives.
        try await p.engine.fixture.commit("a: 3", files: ["api.yaml": Self.service(version: "1.0.0", config: "{a: 3}")])
        var pass = try await p.pass(at: start + 2 * hourSeconds)
        #expect(pass.deploys == ["api@dev 1.0.0"])
        // {a: 2} would have baked in staging now; prod takes nothing.
        pass = try await p.pass(at: start + 3 * hourSeconds + minute)
        #expect(pass.deploys == ["api@staging 1.0.0"])
        pass = try await p.pass(at: start + 4 * hourSeconds)
        #expect(pass.deploys.isEmpty)
        #expect(pass.outcomes["prod"]?.message?.contains("bakes in staging for 2h") == true)
        pass = try await p.pass(at: start + 5 * hourSeconds + 2 * minute)
        #expect(pass.deploys.isEmpty, "the approval was for {a: 2}")
        try await p.approve("prod", "1.0.0", at: start + 5 * hourSeconds + 2 * minute)
        pass = try await p.pass(at: start + 5 * hourSeconds + 3 * minute)
        #expect(pass.deploys == ["api@prod 1.0.0"])
    }

    @Test("two quick commits: prod never runs a config staging did not run for its bake")
    func twoQuickCommits() async throws {
        let p = try Pipeline(service: Self.service(version: "1.0.0", config: "{a: 1}"))
        try await p.walk()
        let start = monday + 10 * hourSeconds
        try await p.engine.fixture.commit("a: 2", files: ["api.yaml": Self.service(version: "1.0.0", config: "{a: 2}")])
        try await p.engine.fixture.commit("a: 3", files: ["api.yaml": Self.service(version: "1.0.0", config: "{a: 3}")])
        try await p.approve("prod", "1.0.0", at: start)
        var prodDeploys: [Date] = []
        var stagingHealthySince: Date?
        for step in 0...24 {
            let at = start + Double(step) * 15 * minute
            let pass = try await p.pass(at: at)
            if pass.deploys.contains("api@staging 1.0.0") { stagingHealthySince = at }
            if pass.deploys.contains("api@prod 1.0.0") {
                prodDeploys.append(at)
                let since = try #require(stagingHealthySince)
                #expect(at.timeIntervalSince(since) >= 2 * hourSeconds, "prod took it before staging's bake")
            }
        }
        #expect(prodDeploys.count == 1)
        let prod = try #require(await p.live("prod"))
        let staging = try #require(await p.live("staging"))
        #expect(prod.release?.baseConfigDigest == staging.release?.baseConfigDigest)
    }

    @Test("a target recorded before releases were kept adopts what it runs, and downstream still waits for it")
    func adoption() async throws {
        let p = try Pipeline(service: Self.service(version: "1.0.0", config: "{}"))
        try await p.walk()
        // As an older Tide left it: no release recorded anywhere.
        for environment in ["dev", "staging", "prod"] {
            var target = try #require(await p.live(environment))
            target.release = nil
            await p.engine.store.apply(StateWrite(targets: [target]))
        }
        // A new process (an upgraded Tide) with its own reconciler.
        p.engine.clock.set(monday + 10 * hourSeconds)
        p.engine.executor.reset()
        let report = try await p.engine.makeReconciler().reconcile(lockTimeout: 1)
        #expect(report.outcomes.allSatisfy { $0.result == .unchanged }, "nothing redeployed on upgrade")
        #expect(p.engine.executor.requests.isEmpty)
        for environment in ["dev", "staging", "prod"] {
            #expect(await p.live(environment)?.release != nil, "\(environment) adopted its release")
        }
    }
}
