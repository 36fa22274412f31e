import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

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
        let reverts = try await h.reconciler.branchWriter.rollbackCommit(service: "checkout", environment: "prod")
        #expect(reverts.count == 1)
        let report = try await h.pass()
        #expect(h.calls() == ["deploy checkout@prod 1.0.0", "health checkout@prod 1.0.0"])
        #expect(report.outcomes.first { $0.target.service == "checkout" }?.classification == .rollback)
        await #expect(throws: RollbackError.self) {
            try await h.reconciler.branchWriter.rollbackCommit(service: "payments", environment: "prod")
        }
    }
}
