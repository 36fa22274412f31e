import Foundation
import Testing
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState
import TideTestSupport

@Suite("TideEngine: promotion")
struct PromotionTests {
    @Test("auto-promotion commits a version once it passed staging's bake; the next pass deploys it")
    func autoPromotion() async throws {
        let environments =
            GateHarness.environment("staging", "{}")
            + GateHarness.environment("prod", "{requires: [staging], bake: 1h, promotion: auto}")
        let h = try GateHarness(
            environments: environments,
            service: GateHarness.service("1.0.0", environments: "{staging: {version: \"1.0.0\"}, prod: {}}"))
        _ = try await h.pass(at: monday)
        var pass = try await h.pass(at: monday + hourSeconds)
        #expect(pass.deploys == ["api@prod 1.0.0"])
        try await h.fixture.commit(
            "2.0.0 to staging",
            files: ["api.yaml": GateHarness.service("1.0.0", environments: "{staging: {version: \"2.0.0\"}, prod: {}}")]
        )
        pass = try await h.pass(at: monday + 2 * hourSeconds)
        #expect(pass.deploys == ["api@staging 2.0.0"])
        let before = try await h.fixture.head()
        h.clock.set(monday + 2.5 * hourSeconds)
        let waiting = try await h.reconciler.reconcile(lockTimeout: 1)
        #expect(try await h.fixture.head() == before, "not baked yet: no promotion")
        // The promotion is timed work that is due: the report (and so --watch) and the plan say when.
        let scheduled = try #require(waiting.scheduledPromotions.first)
        #expect("\(scheduled.service)@\(scheduled.environment) \(scheduled.version)" == "api@prod 2.0.0")
        #expect(scheduled.due == monday + 3 * hourSeconds)
        #expect(waiting.nextDue == monday + 3 * hourSeconds)
        #expect(try await h.reconciler.plan().1?.promotions == [scheduled])

        h.clock.set(monday + 3 * hourSeconds)
        let promoted = try await h.reconciler.reconcile(lockTimeout: 1)
        #expect(promoted.promotions.map { "\($0.service)@\($0.environment) \($0.version)" } == ["api@prod 2.0.0"])
        let head = try await h.fixture.head()
        #expect(head == promoted.promotions.first?.commit)
        let text = try String(contentsOfFile: h.fixture.workTree + "/api.yaml", encoding: .utf8)
        #expect(text.contains("prod: {version: \"2.0.0\"}"))
        #expect(try await h.fixture.git("status", "--porcelain") == "")
        #expect(try await h.fixture.git("log", "-1", "--format=%s") == "Promote api 2.0.0 to prod\n")

        pass = try await h.pass(at: monday + 3 * hourSeconds + minute)
        #expect(pass.deploys == ["api@prod 2.0.0"])
        // Promoted once: the next pass writes nothing more.
        pass = try await h.pass(at: monday + 4 * hourSeconds)
        #expect(try await h.fixture.head() == head)
        let events = await h.store.events(EventQuery(kinds: [.promotionCommitted]))
        #expect(events.count == 1)
    }

    @Test("a manual promotion takes the version from the required environment")
    func manualPromotion() async throws {
        let environments =
            GateHarness.environment("staging", "{}") + GateHarness.environment("prod", "{requires: [staging]}")
        let h = try GateHarness(
            environments: environments,
            service: GateHarness.service("1.0.0", environments: "{staging: {version: \"1.1.0\"}, prod: {}}"))
        _ = try await h.pass(at: monday)
        let promotion = try await h.reconciler.promoter.promote(service: "api", to: "prod", version: nil)
        #expect(promotion.version == "1.1.0")
        #expect(promotion.from == ["staging"])
        let pass = try await h.pass(at: monday + minute)
        #expect(pass.deploys == ["api@prod 1.1.0"])
        await #expect(throws: PromotionError.self) {
            try await h.reconciler.promoter.promote(service: "api", to: "staging", version: nil)
        }
    }
}
