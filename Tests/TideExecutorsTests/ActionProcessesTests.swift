import Foundation
import Testing
import TideExecutors
import TideTestSupport

/// Finding the executor processes of interrupted actions under /proc: by `TIDE_ACTION_ID`, and only those whose
/// Tide is gone.
@Suite("TideExecutors: executor processes left behind by a killed Tide")
struct ActionProcessesTests {
    @Test("an orphaned session with the action id is found and stopped; one a live tide process started is not")
    func orphansOnly() async throws {
        let orphanID = "api.prod.test.orphan-\(UUID().uuidString)"
        let liveID = "api.prod.test.live-\(UUID().uuidString)"
        // A session whose starter exited at once: its leader is handed to init, as when Tide is killed.
        let starter = try BackgroundProcess(
            "/bin/sh", ["-c", "setsid env TIDE_ACTION_ID=\(orphanID) sleep 60 & exit 0"])
        #expect(await starter.waitForExit(timeout: 10) == 0)
        // A session this test process (a `tide…` binary, like Tide) started and still runs.
        let live = try BackgroundProcess("/usr/bin/setsid", ["env", "TIDE_ACTION_ID=\(liveID)", "sleep", "60"])
        defer { live.signal(SIGKILL) }
        var found: [ActionProcesses.Found] = []
        for _ in 0..<100 {
            found = ActionProcesses.running(actionIDs: [orphanID, liveID])
            if !found.isEmpty { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(found.map(\.actionID) == [orphanID], "\(found)")
        #expect(live.isRunning)
        let left = await ActionProcesses.stop(found, grace: 5)
        #expect(left.isEmpty)
        #expect(ActionProcesses.running(actionIDs: [orphanID]).isEmpty)
        #expect(live.isRunning, "the live tide's executor must be left alone")
    }
}
