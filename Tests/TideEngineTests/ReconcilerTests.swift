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
