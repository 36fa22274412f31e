import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

let executorYAML = """
    apiVersion: tide/v1
    kind: Executor
    metadata: {name: local}
    spec: {type: command, command: ["/bin/true"]}
    ---
    apiVersion: tide/v1
    kind: Environment
    metadata: {name: prod}
    spec: {production: true}
    ---
    apiVersion: tide/v1
    kind: Environment
    metadata: {name: staging}
    spec: {}

    """

func serviceYAML(
    _ name: String, version: String, config: String = "{replicas: 1}", dependsOn: [String] = [],
    envs: String = "{prod: {}}"
) -> String {
    """
    apiVersion: tide/v1
    kind: Service
    metadata: {name: \(name)}
    spec:
      executor: local
      version: "\(version)"
      config: \(config)
      environments: \(envs)
      dependsOn: [\(dependsOn.joined(separator: ", "))]

    """
}

/// The engine suites' harness: payments 2.0.0, and checkout 1.0.0 that depends on it, in prod; a minute a pass.
typealias Harness = EngineHarness<InMemoryStateStore>

extension EngineHarness<InMemoryStateStore> {
    init() throws {
        try self.init(
            store: .inMemory,
            files: [
                "tide/base.yaml": executorYAML,
                "services/payments.yaml": serviceYAML("payments", version: "2.0.0"),
                "services/checkout.yaml": serviceYAML("checkout", version: "1.0.0", dependsOn: ["payments"]),
            ])
    }
}

@Suite("TideEngine: reconcile passes with the recreate strategy")
struct ReconcilerTests {
    @Test("the first pass deploys dependencies first; the second pass does nothing")
    func firstDeployThenNoop() async throws {
        let h = try Harness()
        let report = try await h.pass()
        #expect(
            h.calls() == [
                "deploy payments@prod 2.0.0", "health payments@prod 2.0.0", "deploy checkout@prod 1.0.0",
                "health checkout@prod 1.0.0",
            ])
        #expect(report.outcomes.map(\.result) == [.deployed, .deployed])
        #expect(!report.hasFailures)
        let checkout = try #require(await h.live("checkout"))
        #expect(checkout.phase == .healthy)
        #expect(checkout.version == "1.0.0")
        await #expect(checkout.revision == (try h.fixture.head()))

        let eventsBefore = await h.store.events(EventQuery(limit: 1000)).count
        let again = try await h.pass()
        #expect(h.calls().isEmpty)
        #expect(again.outcomes.map(\.result) == [.unchanged, .unchanged])
        #expect(await h.store.events(EventQuery(limit: 1000)).count == eventsBefore)
    }

    @Test("a settled pass is answered from memory exactly as a fresh pass would answer it, until head or the log moves")
    func settledPassMemo() async throws {
        let h = try Harness()
        _ = try await h.pass()
        let remembered = try await h.pass()
        let fresh = try await h.makeReconciler().reconcile(lockTimeout: 1)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(
            String(decoding: try encoder.encode(remembered), as: UTF8.self)
                == String(decoding: try encoder.encode(fresh), as: UTF8.self))

        // Live state changed by another process (with its event) makes the next pass plan for real; so does a
        // new commit.
        var payments = try #require(await h.live("payments"))
        payments.version = "1.9.0"
        await h.store.apply(
            StateWrite(
                targets: [payments],
                events: [Event(time: h.clock.now(), kind: .deploymentSucceeded, message: "elsewhere")]))
        #expect(try await h.pass().outcomes.map(\.result) == [.deployed, .unchanged])
        #expect(try await h.pass().outcomes.map(\.result) == [.unchanged, .unchanged])
        try h.fixture.write("services/payments.yaml", serviceYAML("payments", version: "2.1.0"))
        try await h.fixture.commit("payments 2.1.0")
        let moved = try await h.pass()
        #expect(moved.outcomes.map(\.result) == [.deployed, .unchanged])
        #expect(h.calls() == ["deploy payments@prod 2.1.0", "health payments@prod 2.1.0"])
        #expect(moved.outcomes[0].fromVersion == "2.0.0")
        #expect(try await h.pass().outcomes.map(\.result) == [.unchanged, .unchanged])
    }

    @Test("a version change deploys with the previous version; a config-only change is CONFIG")
    func versionAndConfigChanges() async throws {
        let h = try Harness()
        _ = try await h.pass()
        try await h.fixture.commit(
            "bump",
            files: ["services/checkout.yaml": serviceYAML("checkout", version: "1.1.0", dependsOn: ["payments"])])
        let report = try await h.pass()
        #expect(h.calls() == ["deploy checkout@prod 1.1.0", "health checkout@prod 1.1.0"])
        #expect(h.executor.requests.first?.previousVersion == "1.0.0")
        #expect(report.outcomes.first { $0.target.service == "checkout" }?.classification == .feature)

        try await h.fixture.commit(
            "scale",
            files: [
                "services/checkout.yaml": serviceYAML(
                    "checkout", version: "1.1.0", config: "{replicas: 5}", dependsOn: ["payments"])
            ])
        let config = try await h.pass()
        #expect(h.calls() == ["deploy checkout@prod 1.1.0", "health checkout@prod 1.1.0"])
        #expect(h.executor.requests.first?.config == .object(["replicas": .int(5)]))
        #expect(config.outcomes.first { $0.target.service == "checkout" }?.classification == .config)
    }

    @Test("git revert rolls back and is classified ROLLBACK with the reverted commit")
    func revert() async throws {
        let h = try Harness()
        _ = try await h.pass()
        let bump = try await h.fixture.commit(
            "bump",
            files: ["services/checkout.yaml": serviceYAML("checkout", version: "1.1.0", dependsOn: ["payments"])])
        _ = try await h.pass()
        let revert = try await h.fixture.revert(bump)
        let report = try await h.pass()
        #expect(h.calls() == ["deploy checkout@prod 1.0.0", "health checkout@prod 1.0.0"])
        let outcome = try #require(report.outcomes.first { $0.target.service == "checkout" })
        #expect(outcome.classification == .rollback)
        #expect(outcome.message == "\(revert.short) reverts \(bump.short)")
        let succeeded = await h.store.events(EventQuery(service: "checkout", kinds: [.deploymentSucceeded]))
        #expect(succeeded.first?.classification == .rollback)
        #expect(succeeded.first?.version == "1.0.0")
        #expect(succeeded.first?.previousVersion == "1.1.0")
    }

    @Test("going back to a version that ran before, without a revert, is also ROLLBACK")
    func manualRollback() async throws {
        let h = try Harness()
        _ = try await h.pass()
        for version in ["1.1.0", "1.2.0", "1.0.0"] {
            try await h.fixture.commit(
                version,
                files: ["services/checkout.yaml": serviceYAML("checkout", version: version, dependsOn: ["payments"])])
            let report = try await h.pass()
            let outcome = try #require(report.outcomes.first { $0.target.service == "checkout" })
            #expect(outcome.classification == (version == "1.0.0" ? .rollback : .feature), "\(version)")
        }
    }

    @Test("a failed deploy marks the target Failed, holds it, blocks dependents; a new commit retries")
    func failureHoldsUntilDesiredChanges() async throws {
        let h = try Harness()
        _ = try await h.pass()
        h.executor.fail(when: { $0.version == "2.1.0" && $0.action == .deploy }, with: .exited(7))
        try await h.fixture.commit(
            "payments 2.1.0",
            files: [
                "services/payments.yaml": serviceYAML("payments", version: "2.1.0"),
                "services/checkout.yaml": serviceYAML("checkout", version: "1.1.0", dependsOn: ["payments"]),
            ])
        let failed = try await h.pass()
        #expect(h.calls() == ["deploy payments@prod 2.1.0"])
        #expect(failed.hasFailures)
        #expect(failed.outcomes.map(\.result) == [.failed, .blocked])
        let payments = try #require(await h.live("payments"))
        #expect(payments.phase == .failed)
        #expect(payments.version == "2.0.0")
        #expect(payments.failed?.version == "2.1.0")
        #expect(payments.failed?.message.contains("exited with status 7") == true)
        let events = await h.store.events(EventQuery(service: "payments", kinds: [.deploymentFailed, .stepFailed]))
        #expect(events.map(\.kind) == [.deploymentFailed, .stepFailed])
        #expect(events.last?.details?.canonicalJSON.contains("scripted failure") == true)

        let held = try await h.pass()
        #expect(h.calls().isEmpty)
        #expect(held.outcomes.map(\.result) == [.held, .blocked])
        #expect(held.hasFailures)

        h.executor.clearFailures()
        try await h.fixture.commit(
            "payments 2.1.1", files: ["services/payments.yaml": serviceYAML("payments", version: "2.1.1")])
        let fixed = try await h.pass()
        #expect(fixed.outcomes.map(\.result) == [.deployed, .deployed])
        #expect(await h.live("payments")?.failed == nil)
    }

    @Test("reverting a failed version redeploys the stable one")
    func revertAfterFailure() async throws {
        let h = try Harness()
        _ = try await h.pass()
        h.executor.fail(when: { $0.version == "9.9.9" })
        let bad = try await h.fixture.commit(
            "bad", files: ["services/payments.yaml": serviceYAML("payments", version: "9.9.9")])
        _ = try await h.pass()
        try await h.fixture.revert(bad)
        let report = try await h.pass()
        #expect(h.calls() == ["deploy payments@prod 2.0.0", "health payments@prod 2.0.0"])
        #expect(report.outcomes.first?.classification == .rollback)
        #expect(await h.live("payments")?.phase == .healthy)
    }

    @Test("a pass interrupted after a step resumes at the next step with the same action ids")
    func resumeAfterCrash() async throws {
        let h = try Harness()
        _ = try await h.pass()
        let head = try await h.fixture.commit(
            "bump", files: ["services/payments.yaml": serviceYAML("payments", version: "2.1.0")])
        // What a kill -9 right after the deploy step leaves behind: the rollout recorded at step 1.
        var payments = try #require(await h.live("payments"))
        payments.phase = .progressing
        payments.rollout = Rollout(
            version: "2.1.0", config: .object(["replicas": .int(1)]),
            configDigest: ObjectID.blobHash(of: Array(#"{"replicas":1}"#.utf8)).hex, revision: head,
            previousVersion: "2.0.0", classification: .feature, reason: nil, step: 1, startedAt: h.clock.now())
        await h.store.apply(StateWrite(targets: [payments]))

        let report = try await h.pass()
        #expect(h.calls() == ["health payments@prod 2.1.0"])
        let id = try #require(h.executor.requests.first?.actionID)
        #expect(id.hasPrefix("payments.prod.\(head.short).") && id.hasSuffix(".1-health"), "\(id)")
        #expect(report.outcomes.first?.result == .deployed)
        #expect(await h.live("payments")?.version == "2.1.0")
    }

    @Test("a newer commit pre-empts an interrupted rollout")
    func preempt() async throws {
        let h = try Harness()
        _ = try await h.pass()
        let head = try await h.fixture.commit(
            "2.1.0", files: ["services/payments.yaml": serviceYAML("payments", version: "2.1.0")])
        var payments = try #require(await h.live("payments"))
        payments.phase = .progressing
        payments.rollout = Rollout(
            version: "2.1.0", config: .object([:]), configDigest: "x", revision: head, previousVersion: "2.0.0",
            classification: .feature, reason: nil, step: 1, startedAt: h.clock.now())
        await h.store.apply(StateWrite(targets: [payments]))
        try await h.fixture.commit(
            "2.2.0", files: ["services/payments.yaml": serviceYAML("payments", version: "2.2.0")])
        _ = try await h.pass()
        // The executor hears that 2.1.0 is gone (traffic back to 2.0.0) before 2.2.0 is deployed.
        #expect(
            h.calls() == ["rollback payments@prod 2.0.0", "deploy payments@prod 2.2.0", "health payments@prod 2.2.0"])
        #expect(h.executor.requests.first?.previousVersion == "2.1.0")
        let superseded = await h.store.events(EventQuery(kinds: [.deploymentSuperseded]))
        #expect(superseded.map(\.version) == ["2.1.0"])
    }

    @Test("an invalid commit is rejected whole: live state untouched, the last good revision kept, one event")
    func rejection() async throws {
        let h = try Harness()
        _ = try await h.pass()
        let good = try await h.fixture.head()
        let before = await h.store.liveTargets()
        let bad = try await h.fixture.commit(
            "broken",
            files: [
                "services/payments.yaml": serviceYAML("payments", version: "3.0.0"),
                "services/checkout.yaml":
                    "apiVersion: tide/v1\nkind: Service\nmetadata: {name: checkout}\nspec: {executor: local, environments: {prod: {}}, bogus: 1}\n",
            ])
        let report = try await h.pass()
        #expect(h.calls().isEmpty)
        #expect(report.hasFailures)
        #expect(report.applied == good)
        #expect(report.head == bad)
        #expect(report.rejected.contains { $0.description.hasPrefix("services/checkout.yaml:4:") })
        #expect(await h.store.liveTargets() == before)
        let status = await h.store.repositoryStatus()
        #expect(status.lastGoodRevision == good)
        #expect(status.rejectedRevision == bad)
        _ = try await h.pass()
        #expect(await h.store.events(EventQuery(kinds: [.revisionRejected])).count == 1)

        try await h.fixture.commit(
            "fixed",
            files: ["services/checkout.yaml": serviceYAML("checkout", version: "1.0.0", dependsOn: ["payments"])])
        let fixed = try await h.pass()
        #expect(fixed.rejected.isEmpty)
        #expect(h.calls() == ["deploy payments@prod 3.0.0", "health payments@prod 3.0.0"])
        #expect(await h.store.repositoryStatus().rejectedRevision == nil)
    }

    @Test("a service removed from git is removed through its executor")
    func removal() async throws {
        let h = try Harness()
        try await h.fixture.commit(
            "staging",
            files: [
                "services/payments.yaml": serviceYAML("payments", version: "2.0.0", envs: "{prod: {}, staging: {}}")
            ])
        _ = try await h.pass()
        try await h.fixture.commit(
            "drop staging", files: ["services/payments.yaml": serviceYAML("payments", version: "2.0.0")])
        let report = try await h.pass()
        #expect(h.calls() == ["remove payments@staging 2.0.0"])
        #expect(report.outcomes.last?.result == .removed)
        #expect(await h.live("payments", "staging") == nil)
    }

    @Test("plan shows what reconcile would do, and changes nothing")
    func plan() async throws {
        let h = try Harness()
        let (resolution, plan) = try await h.reconciler.plan()
        #expect(resolution.rejected.isEmpty)
        #expect(plan?.pending.map(\.target.description) == ["payments@prod", "checkout@prod"])
        #expect(h.executor.requests.isEmpty)
        #expect(await h.store.liveTargets().isEmpty)
        #expect(await h.store.events(EventQuery()).isEmpty)
    }

    @Test("time comes from the injected clock")
    func clock() async throws {
        let h = try Harness()
        _ = try await h.pass()
        #expect(await h.live("payments")?.updatedAt == h.clock.now())
    }
}

@Suite("TideEngine: automatic rollback")
struct AutomaticRollbackTests {
    static func service(_ version: String, writeBack: String) -> String {
        serviceYAML("payments", version: version).replacingOccurrences(
            of: "  executor: local\n",
            with: "  executor: local\n  rollback: {automatic: true, writeBack: \(writeBack)}\n")
    }

    @Test("a failed health check rolls back to the stable version and holds the failed one")
    func rollsBack() async throws {
        let h = try Harness()
        try await h.fixture.commit("auto", files: ["services/payments.yaml": Self.service("2.0.0", writeBack: "none")])
        _ = try await h.pass()
        h.executor.fail(when: { $0.action == .health && $0.version == "2.1.0" })
        try await h.fixture.commit("bad", files: ["services/payments.yaml": Self.service("2.1.0", writeBack: "none")])
        let report = try await h.pass()
        #expect(
            h.calls() == [
                "deploy payments@prod 2.1.0", "health payments@prod 2.1.0", "rollback payments@prod 2.0.0",
                "health payments@prod 2.0.0",
            ])
        #expect(report.hasFailures)
        #expect(report.outcomes.first?.message?.contains("rolled back to 2.0.0 automatically") == true)
        let payments = try #require(await h.live("payments"))
        #expect(payments.phase == .rolledBack)
        #expect(payments.version == "2.0.0")
        #expect(payments.failed?.version == "2.1.0")
        // Held: not retried while git still asks for 2.1.0.
        let held = try await h.pass()
        #expect(h.calls().isEmpty)
        #expect(held.outcomes.first?.result == .held)
        // DORA: the failed rollout recovered at the rollback, which counts as an unplanned deployment.
        let ledger = await h.store.deployments(
            DeploymentQuery(target: TargetID(service: "payments", environment: "prod")))
        #expect(ledger.first?.classification == .rollback)
        #expect(ledger[1].failed && ledger[1].recoveredAt != nil)
    }

    @Test("with writeBack: revert, git is reverted to match, and the next pass has nothing to do")
    func writesRevert() async throws {
        let h = try Harness()
        try await h.fixture.commit(
            "auto", files: ["services/payments.yaml": Self.service("2.0.0", writeBack: "revert")])
        _ = try await h.pass()
        h.executor.fail(when: { $0.action == .health && $0.version == "2.1.0" })
        let bad = try await h.fixture.commit(
            "bad", files: ["services/payments.yaml": Self.service("2.1.0", writeBack: "revert")])
        _ = try await h.pass()
        let head = try await h.fixture.head()
        let commit = try Repository.open(at: h.fixture.repoPath).commit(head)
        #expect(commit.revertedCommit == bad)
        #expect(try await h.fixture.git("status", "--porcelain") == "")
        let next = try await h.pass()
        #expect(h.calls().isEmpty)
        #expect(!next.hasFailures)
        #expect(await h.store.events(EventQuery(kinds: [.revertCommitted])).count == 1)
        // The rolled-back target is settled; a new version deploys normally.
        try await h.fixture.commit(
            "fixed", files: ["services/payments.yaml": Self.service("2.1.1", writeBack: "revert")])
        _ = try await h.pass()
        #expect(h.calls() == ["deploy payments@prod 2.1.1", "health payments@prod 2.1.1"])
    }

    @Test("tide rollback reverts what the live deployment shipped")
    func manualRollback() async throws {
        let h = try Harness()
        _ = try await h.pass()
        try await h.fixture.commit(
            "bump",
            files: ["services/checkout.yaml": serviceYAML("checkout", version: "1.1.0", dependsOn: ["payments"])])
        _ = try await h.pass()
        let reverts = try await h.reconciler.rollbackCommit(service: "checkout", environment: "prod")
        #expect(reverts.count == 1)
        let report = try await h.pass()
        #expect(h.calls() == ["deploy checkout@prod 1.0.0", "health checkout@prod 1.0.0"])
        #expect(report.outcomes.first { $0.target.service == "checkout" }?.classification == .rollback)
        await #expect(throws: RollbackError.self) {
            try await h.reconciler.rollbackCommit(service: "payments", environment: "prod")
        }
    }
}

@Suite("TideEngine: canary rollouts, one pass at a time")
struct CanaryTests {
    static func canary(_ version: String) -> String {
        serviceYAML("payments", version: version).replacingOccurrences(
            of: "  executor: local\n",
            with: """
                  executor: local
                  strategy:
                    type: canary
                    steps:
                      - setWeight: 10
                      - pause: 10m
                      - setWeight: 50
                      - pause: {}

                """)
    }

    func started() async throws -> Harness {
        let h = try Harness()
        try await h.fixture.commit("canary", files: ["services/payments.yaml": Self.canary("2.0.0")])
        _ = try await h.pass()
        try await h.fixture.commit("2.1.0", files: ["services/payments.yaml": Self.canary("2.1.0")])
        return h
    }

    @Test("a first deployment has no stable side: it goes straight to 100 %")
    func firstDeployment() async throws {
        let h = try Harness()
        try await h.fixture.commit("canary", files: ["services/payments.yaml": Self.canary("2.0.0")])
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["deploy 2.0.0 100", "health 2.0.0 100"])
    }

    @Test("weights and pauses advance with the clock; an open-ended pause waits for promote")
    func walk() async throws {
        let h = try await started()
        var report = try await h.pass()
        #expect(h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 10"])
        let first = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(first.result == .progressing)
        #expect(first.nextDue == h.clock.now().addingTimeInterval(600))
        #expect(report.outcomes.first { $0.target.service == "checkout" }?.result == .unchanged)
        #expect(!report.hasFailures)
        #expect(await h.live("payments")?.rollout?.weight == 10)
        #expect(await h.live("payments")?.rollout?.nextDue == h.clock.now().addingTimeInterval(600))

        h.clock.advance(by: 240)  // pass() adds 60 s: 5 minutes in
        report = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty)

        h.clock.advance(by: 240)  // 10 minutes in
        report = try await h.pass()
        #expect(h.calls(of: "payments") == ["set-weight 2.1.0 50"])
        #expect(
            report.outcomes.first?.message
                == "step 4/4: pause at weight 50, waiting for tide promote payments --env prod")
        #expect(report.outcomes.first?.nextDue == nil)
        #expect(await h.live("payments")?.rollout?.nextDue == nil, "an open-ended pause waits for a person")

        h.clock.advance(by: 86_400)
        _ = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty, "an open-ended pause does not time out")

        let said = try await h.reconciler.control(
            .promote(full: false), service: "payments", environment: "prod", by: "dana")
        #expect(said.contains("promoted past step 4/4: pause"))
        report = try await h.pass()
        #expect(
            h.calls(of: "payments").filter { $0.hasPrefix("promote") || $0.hasPrefix("health 2.1.0 100") } == [
                "promote 2.1.0 100", "health 2.1.0 100",
            ])
        #expect(await h.live("payments")?.version == "2.1.0")
        #expect(await h.live("payments")?.phase == .healthy)
    }

    @Test("promote --full skips the remaining weights and pauses")
    func promoteFull() async throws {
        let h = try await started()
        _ = try await h.pass()
        _ = try await h.reconciler.control(.promote(full: true), service: "payments", environment: "prod", by: "dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["promote 2.1.0 100", "health 2.1.0 100"])
        #expect(await h.live("payments")?.version == "2.1.0")
    }

    @Test("pause holds a timed pause past its end; resume lets it go on")
    func pauseResume() async throws {
        let h = try await started()
        _ = try await h.pass()
        _ = try await h.reconciler.control(.pause, service: "payments", environment: "prod", by: "dana")
        h.clock.advance(by: 3600)
        let held = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty)
        #expect(held.outcomes.first?.message?.contains("tide resume continues") == true)
        _ = try await h.reconciler.control(.resume, service: "payments", environment: "prod", by: "dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["set-weight 2.1.0 50"])
    }

    @Test("abort sends traffic back to stable and holds the version; retry tries it again")
    func abortRetry() async throws {
        let h = try await started()
        _ = try await h.pass()
        h.executor.reset()
        let said = try await h.reconciler.control(.abort, service: "payments", environment: "prod", by: "dana")
        #expect(said.contains("rolled back to 2.0.0"))
        #expect(h.calls(of: "payments") == ["rollback 2.0.0 100", "health 2.0.0 100"])
        let payments = try #require(await h.live("payments"))
        #expect(payments.phase == .rolledBack)
        #expect(payments.version == "2.0.0")
        #expect(payments.failed?.message == "aborted by dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty, "held after abort")
        _ = try await h.reconciler.control(.retry, service: "payments", environment: "prod", by: "dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 10"])
        await #expect(throws: ControlError.self) {
            try await h.reconciler.control(.retry, service: "checkout", environment: "prod", by: "dana")
        }
    }

    @Test("a failing step in a canary returns traffic to stable")
    func failure() async throws {
        let h = try await started()
        h.executor.fail(when: { $0.action == .setWeight && $0.weight == 10 })
        let report = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 10", "rollback 2.0.0 100", "health 2.0.0 100",
            ])
        #expect(report.hasFailures)
        #expect(await h.live("payments")?.phase == .rolledBack)
    }

    @Test("a newer commit pre-empts a paused canary")
    func preempt() async throws {
        let h = try await started()
        _ = try await h.pass()
        try await h.fixture.commit("2.2.0", files: ["services/payments.yaml": Self.canary("2.2.0")])
        _ = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "rollback 2.0.0 100", "deploy 2.2.0 0", "health 2.2.0 0", "set-weight 2.2.0 10",
            ])
        #expect(h.executor.requests.first?.previousVersion == "2.1.0", "the pre-empted candidate")
    }

    @Test("tide pause holds the rollout across newer commits until tide resume; then the newer one pre-empts it")
    func pauseHoldsAcrossCommits() async throws {
        let h = try await started()
        _ = try await h.pass()  // 2.1.0 at weight 10
        _ = try await h.reconciler.control(.pause, service: "payments", environment: "prod", by: "dana")
        try await h.fixture.commit("2.2.0", files: ["services/payments.yaml": Self.canary("2.2.0")])
        var report = try await h.pass()
        #expect(h.calls(of: "payments").isEmpty, "held: nothing pre-empts a paused rollout")
        let waiting = try #require(report.outcomes.first { $0.target.service == "payments" })
        #expect(waiting.result == .waiting)
        #expect(waiting.message?.contains("paused (by dana); 2.2.0 waits: tide resume payments --env prod") == true)
        #expect(await h.live("payments")?.rollout?.version == "2.1.0")
        _ = try await h.reconciler.control(.resume, service: "payments", environment: "prod", by: "dana")
        report = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "rollback 2.0.0 100", "deploy 2.2.0 0", "health 2.2.0 0", "set-weight 2.2.0 10",
            ])
    }

    @Test("a canary whose strategy changes under it is pre-empted, never marked healthy without a promote")
    func strategyChangeMidRollout() async throws {
        let h = try await started()
        _ = try await h.pass()  // 2.1.0 at weight 10, pausing
        #expect(await h.live("payments")?.rollout?.weight == 10)
        // Same version, recreate now: the old step index must not run off the end of a shorter list.
        try await h.fixture.commit(
            "recreate", files: ["services/payments.yaml": serviceYAML("payments", version: "2.1.0")])
        let plan = try #require(try await h.reconciler.plan().1?.actions.first { $0.target.service == "payments" })
        #expect(plan.kind == .deploy)
        #expect(plan.reason?.contains("the strategy's steps changed while 2.1.0 rolled out") == true)
        _ = try await h.pass()
        // Traffic back to stable first, then the new desired state rolls out with its own steps.
        #expect(h.calls(of: "payments") == ["rollback 2.0.0 100", "deploy 2.1.0 100", "health 2.1.0 100"])
        let live = try #require(await h.live("payments"))
        #expect(live.phase == .healthy && live.version == "2.1.0")
        // Every step of the new attempt has an id of its own, not the pre-empted attempt's.
        let ids = h.executor.requests.map(\.actionID)
        #expect(Set(ids).count == ids.count)
        #expect(ids[0].split(separator: ".")[3] != ids[1].split(separator: ".")[3], "\(ids)")
    }
}

@Suite("TideEngine: analysis steps")
struct AnalysisTests {
    static let analysis = """
        apiVersion: tide/v1
        kind: Analysis
        metadata: {name: error-budget}
        spec:
          interval: 1m
          count: 3
          failureLimit: 0
          inconclusiveLimit: 0
          metrics:
            - name: error-rate
              provider: {command: {command: ["/usr/local/bin/error-rate"]}}
              successCondition: "result < 0.01"
              failureCondition: "result >= 0.05"

        """

    static func service(_ version: String) -> String {
        serviceYAML("payments", version: version).replacingOccurrences(
            of: "  executor: local\n",
            with: """
                  executor: local
                  strategy:
                    type: canary
                    steps: [{setWeight: 20}, {analysis: error-budget}, {setWeight: 60}]

                """)
    }

    func started(rate: String) async throws -> Harness {
        let h = try Harness()
        try await h.fixture.commit(
            "canary", files: ["services/payments.yaml": Self.service("2.0.0"), "tide/analysis.yaml": Self.analysis])
        _ = try await h.pass()
        h.executor.respond(when: { $0.action == .measure }, with: rate)
        try await h.fixture.commit("2.1.0", files: ["services/payments.yaml": Self.service("2.1.0")])
        return h
    }

    @Test("three good measurements a minute apart let the canary go on")
    func passes() async throws {
        let h = try await started(rate: "0.002\n")
        var report = try await h.pass()
        #expect(
            h.calls(of: "payments") == ["deploy 2.1.0 0", "health 2.1.0 0", "set-weight 2.1.0 20", "measure 2.1.0 20"])
        #expect(report.outcomes.first?.message?.contains("analysis error-budget: 1/3 rounds, 1 ok") == true)
        let measurement = h.executor.requests.last { $0.action == .measure }
        #expect(measurement?.weight == 20)
        // pass() moves the clock a minute: each pass finds the next round due.
        report = try await h.pass()
        #expect(h.calls(of: "payments") == ["measure 2.1.0 20"])
        report = try await h.pass()
        #expect(
            h.calls(of: "payments") == [
                "measure 2.1.0 20", "set-weight 2.1.0 60", "promote 2.1.0 100", "health 2.1.0 100",
            ])
        #expect(await h.live("payments")?.version == "2.1.0")
    }

    @Test("a failed measurement aborts the canary and returns traffic to stable")
    func fails() async throws {
        let h = try await started(rate: "0.3")
        let report = try await h.pass()
        #expect(h.calls(of: "payments").suffix(2) == ["rollback 2.0.0 100", "health 2.0.0 100"])
        #expect(
            report.outcomes.first?.message?.contains("analysis error-budget failed: 1 failed measurement(s)") == true)
        #expect(report.outcomes.first?.message?.contains("error-rate = 0.3") == true)
        #expect(await h.live("payments")?.phase == .rolledBack)
    }

    @Test("no data is inconclusive, not a success: the rollout pauses for a person")
    func noData() async throws {
        let h = try await started(rate: "")
        let report = try await h.pass()
        #expect(report.outcomes.first?.result == .progressing)
        #expect(report.outcomes.first?.message?.contains("inconclusive (error-rate: no data)") == true)
        #expect(await h.live("payments")?.rollout?.paused == true)
        h.executor.respond(when: { $0.action == .measure }, with: "0.001")
        _ = try await h.reconciler.control(.resume, service: "payments", environment: "prod", by: "dana")
        _ = try await h.pass()
        #expect(h.calls(of: "payments").contains("measure 2.1.0 20"))
    }

    @Test("between the conditions is inconclusive")
    func between() async throws {
        let h = try await started(rate: "0.02")
        let report = try await h.pass()
        #expect(report.outcomes.first?.message?.contains("meets neither condition") == true)
    }

    @Test("an undefined analysis is a manifest error")
    func undefined() throws {
        let fixture = try GitFixture()
        let id = try fixture.commit(
            "x", files: ["base.yaml": executorYAML, "payments.yaml": Self.service("1.0.0")])
        #expect {
            try ManifestLoader().load(
                from: GitCommitSource(repository: try Repository.open(at: fixture.repoPath), commit: id, root: ""))
        } throws: { error in
            "\(error)".contains("analysis 'error-budget' is not defined")
        }
    }
}
