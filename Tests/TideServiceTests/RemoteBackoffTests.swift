import Foundation
import Testing
import TideEngine
import TideGit
import TideTestSupport

@testable import TideService

/// The remote's backoff on the injected clock: the waits between failed fetches are checked without waiting.
@Suite("TideService: a failing remote backs off on the clock it is given")
struct RemoteBackoffTests {
    @Test("1, 2, 4 s between failed fetches, capped at maximumBackoff; in between it backs off; a forced fetch tries")
    func backoff() async throws {
        let scratch = try TemporaryDirectory("tide-backoff")
        let clock = TestClock(Date(timeIntervalSince1970: 1_800_000_000))
        let start = clock.now()
        let source = await RemoteSource(
            remote: try #require(try RemoteURL(parsing: "file://" + scratch.appending("gone.git"))),
            mirrorPath: scratch.appending("mirror"),
            credentials: RemoteCredentials(), branch: "main", timeout: 30, maximumBackoff: 4,
            executable: TideBinary.path, store: InMemoryStateStore(), clock: clock)
        func failed(_ outcome: RemoteSource.FetchOutcome) -> Bool {
            if case .failed = outcome { true } else { false }
        }
        #expect(failed(await source.fetch()))
        #expect(await source.retryAt == start.addingTimeInterval(1))
        #expect(await source.fetch() == .backingOff(start.addingTimeInterval(1)), "within the backoff: not tried")
        var elapsed = 0.0
        for wait in [1.0, 2.0, 4.0, 4.0] {
            clock.advance(by: wait - 0.5)
            #expect(await source.fetch() == .backingOff(start.addingTimeInterval(elapsed + wait)))
            clock.advance(by: 0.5)
            elapsed += wait
            #expect(failed(await source.fetch()), "tried again after \(wait) s")
            let next = min(4, wait * 2)
            #expect(await source.retryAt == start.addingTimeInterval(elapsed + next))
        }
        // A push's webhook forces a fetch through the backoff.
        #expect(failed(await source.fetch(force: true)))
        #expect(await source.status.consecutiveFetchFailures == 6)
        #expect(await source.status.lastFetchAt == clock.now())
    }
}
