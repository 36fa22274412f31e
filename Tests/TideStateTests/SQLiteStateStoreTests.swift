import Foundation
import GRDB
import Testing
import TideGit
import TideManifest
import TideState
import TideTestSupport

@Suite("TideState: the SQLite state store")
struct SQLiteStateStoreTests {
    let directory: TemporaryDirectory
    let path: String

    init() throws {
        directory = try TemporaryDirectory("tide-state")
        path = directory.appending("nested/state.sqlite")
    }

    static let revision = ObjectID(hex: String(repeating: "ab", count: 20))!
    static let id = TargetID(service: "checkout", environment: "prod")

    func sampleTarget(phase: TargetPhase = .healthy, version: String = "1.0.0") -> LiveTarget {
        LiveTarget(
            id: Self.id, executor: "local", phase: phase, version: version, configDigest: "d1",
            revision: Self.revision,
            rollout: phase == .progressing
                ? Rollout(
                    version: "2.0.0", config: .object(["replicas": .int(2)]), configDigest: "d2",
                    revision: Self.revision, previousVersion: version, classification: .feature, reason: "r",
                    step: 1, startedAt: Date(timeIntervalSince1970: 100))
                : nil,
            updatedAt: Date(timeIntervalSince1970: 1000))
    }

    @Test("targets, events, actions and status survive reopening the file")
    func roundTrip() async throws {
        do {
            let store = try SQLiteStateStore(path: path)
            try await store.apply(
                StateWrite(
                    targets: [sampleTarget(phase: .progressing)],
                    events: [
                        Event(
                            time: Date(timeIntervalSince1970: 5), kind: .revisionAccepted, revision: Self.revision,
                            message: "ok"),
                        Event(
                            time: Date(timeIntervalSince1970: 6), kind: .deploymentStarted, target: Self.id,
                            revision: Self.revision, version: "2.0.0", previousVersion: "1.0.0",
                            classification: .feature, message: "go", details: .object(["actionId": .string("x")])),
                    ],
                    actions: [
                        ActionRecord(
                            id: "a1", target: Self.id, action: "deploy", status: .started,
                            startedAt: Date(timeIntervalSince1970: 7))
                    ],
                    repositoryStatus: RepositoryStatus(
                        lastGoodRevision: Self.revision, lastGoodAt: Date(timeIntervalSince1970: 5))))
        }
        let store = try SQLiteStateStore(path: path)
        let target = try #require(try await store.liveTarget(Self.id))
        #expect(target == sampleTarget(phase: .progressing))
        let events = try await store.events(EventQuery())
        #expect(events.map(\.kind) == [.deploymentStarted, .revisionAccepted])
        #expect(events[0].details == .object(["actionId": .string("x")]))
        #expect(events[0].classification == .feature)
        #expect(events[0].id! > events[1].id!)
        #expect(try await store.events(EventQuery(service: "checkout")).count == 1)
        #expect(try await store.events(EventQuery(kinds: [.revisionAccepted])).count == 1)
        #expect(try await store.events(EventQuery(limit: 1)).count == 1)
        #expect(try await store.action("a1")?.status == .started)
        #expect(try await store.repositoryStatus().lastGoodRevision == Self.revision)

        try await store.apply(
            StateWrite(actions: [
                ActionRecord(
                    id: "a1", target: Self.id, action: "deploy", status: .succeeded,
                    startedAt: Date(timeIntervalSince1970: 7), finishedAt: Date(timeIntervalSince1970: 8))
            ]))
        #expect(try await store.action("a1")?.status == .succeeded)
        try await store.apply(StateWrite(removedTargets: [Self.id]))
        #expect(try await store.liveTargets().isEmpty)
    }

    @Test("the event log is append-only, enforced by the database itself")
    func appendOnly() async throws {
        let store = try SQLiteStateStore(path: path)
        try await store.apply(StateWrite(events: [Event(time: Date(), kind: .reconcileError, message: "x")]))
        let queue = try DatabaseQueue(path: path)
        #expect(throws: DatabaseError.self) {
            try queue.write { try $0.execute(sql: "UPDATE events SET message = 'rewritten'") }
        }
        #expect(throws: DatabaseError.self) {
            try queue.write { try $0.execute(sql: "DELETE FROM events") }
        }
        #expect(try await store.events(EventQuery()).first?.message == "x")
    }

    @Test("a second holder of the lock waits, then fails with a clear message")
    func exclusiveLock() async throws {
        let first = try SQLiteStateStore(path: path)
        let second = try SQLiteStateStore(path: path)
        let entered = LockedBox(false)
        try await first.withExclusiveLock(timeout: 1) {
            await #expect {
                _ = try await second.withExclusiveLock(timeout: 0.3) { entered.set(true) }
            } throws: { error in
                let text = "\(error)"
                return text.contains("is locked by another tide process (pid \(getpid())") && text.contains(path)
            }
        }
        #expect(!entered.get())
        // Released: now the second gets it at once.
        try await second.withExclusiveLock(timeout: 0.3) { entered.set(true) }
        #expect(entered.get())
    }

    @Test("the lock follows the file, not its path: a symlink and another spelling are one lock")
    func lockByIdentity() async throws {
        let first = try SQLiteStateStore(path: path)
        let directory = (path as NSString).deletingLastPathComponent
        let symlink = directory + "/through-a-symlink.sqlite"
        let dotted = directory + "/./" + (path as NSString).lastPathComponent
        try FileManager.default.createSymbolicLink(atPath: symlink, withDestinationPath: path)
        let others = try [symlink, dotted].map { try SQLiteStateStore(path: $0) }
        let entered = LockedBox(0)
        try await first.withExclusiveLock(timeout: 1) {
            for other in others {
                await #expect(throws: StateError.self) {
                    _ = try await other.withExclusiveLock(timeout: 0.2) { entered.update { $0 += 1 } }
                }
            }
        }
        #expect(entered.get() == 0)
        // Released, each gets it in turn; none of them is shut out for good.
        for other in others { try await other.withExclusiveLock(timeout: 0.5) { entered.update { $0 += 1 } } }
        #expect(entered.get() == 2)
    }

    @Test("a state file with a second name (a hard link) is refused before anything is written")
    func hardLinkRefused() async throws {
        let first = try SQLiteStateStore(path: path)
        try await first.apply(StateWrite(events: [Event(time: Date(), kind: .reconcileError, message: "x")]))
        let hardLink = (path as NSString).deletingLastPathComponent + "/through-a-hard-link.sqlite"
        try FileManager.default.linkItem(atPath: path, toPath: hardLink)
        #expect {
            _ = try SQLiteStateStore(path: hardLink)
        } throws: { error in
            "\(error)".contains("has 2 hard links")
        }
        // The store opened before the link was made cannot take the lock either: no pass runs on it.
        await #expect(throws: StateError.self) {
            try await first.withExclusiveLock(timeout: 0.2) {}
        }
        try FileManager.default.removeItem(atPath: hardLink)
        try await first.withExclusiveLock(timeout: 0.2) {}
        #expect(try await first.events(EventQuery()).count == 1)
    }

    @Test("a waiting holder gets the lock as soon as the first releases it")
    func lockWaits() async throws {
        await waitUntilThreadsAreResponsive()  // the first holder's 300 ms sleep must not take the second's 60 s
        let first = try SQLiteStateStore(path: path)
        let second = try SQLiteStateStore(path: path)
        let order = LockedBox<[String]>([])
        async let held: Void = first.withExclusiveLock(timeout: 1) {
            order.update { $0.append("first in") }
            try await Task.sleep(for: .milliseconds(300))
            order.update { $0.append("first out") }
        }
        while !order.get().contains("first in") { try await Task.sleep(for: .milliseconds(10)) }
        try await second.withExclusiveLock(timeout: 60) { order.update { $0.append("second in") } }
        try await held
        #expect(order.get() == ["first in", "first out", "second in"])
    }

    @Test("many openers of a new state file at once all see one schema, created once")
    func concurrentCreation() async throws {
        let path = self.path
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { _ = try SQLiteStateStore(path: path) }
            }
            try await group.waitForAll()
        }
        let store = try SQLiteStateStore(path: path)
        #expect(try await store.liveTargets().isEmpty)
    }

    @Test("wait reasons: stored as JSON; rows from before (names joined by commas, an error prefix) read as before")
    func waitReasons() async throws {
        let store = try SQLiteStateStore(path: path)
        let gated = TargetID(service: "api", environment: "prod")
        let failing = TargetID(service: "web", environment: "prod")
        let written: [WaitReason] = [.gate(.approval), .database, .error("apply failed: exit 4, \"quoted\", a,b")]
        try await store.apply(
            StateWrite(targets: [
                LiveTarget(
                    id: gated, executor: "x", phase: .healthy, waiting: "w", waitingOn: written, updatedAt: Date())
            ]))
        #expect(try await store.liveTarget(gated)?.waitingOn == written)
        // A state file of the version before: the names joined by commas, an error only in the sentence.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "UPDATE targets SET waiting_on = 'approval,window,nonsense' WHERE service = 'api'")
            try db.execute(
                sql: """
                    INSERT INTO targets (service, environment, executor, phase, updated_at, waiting)
                    VALUES ('web', 'prod', 'x', 'pending', 0, 'error: deploy failed: exit 4')
                    """)
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v13-wait-reasons'")
        }
        let reopened = try SQLiteStateStore(path: path)
        #expect(try await reopened.liveTarget(gated)?.waitingOn == [.gate(.approval), .gate(.window)])
        #expect(try await reopened.liveTarget(failing)?.waitingOn == [.error("deploy failed: exit 4")])
        #expect(try await reopened.liveTarget(failing)?.waiting == "error: deploy failed: exit 4")
        let stored = try await queue.read {
            try String.fetchOne($0, sql: "SELECT waiting_on FROM targets WHERE service = 'api'")
        }
        #expect(stored == #"["approval","window"]"#)
    }

    @Test("a state file from a newer tide is refused")
    func newerSchema() async throws {
        _ = try SQLiteStateStore(path: path)
        let queue = try DatabaseQueue(path: path)
        try await queue.write {
            try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
        }
        #expect {
            try SQLiteStateStore(path: path)
        } throws: { error in
            "\(error)".contains("newer version of tide")
        }
    }

    @Test("an empty (0-byte) state file is refused, not taken as new; a missing one is created")
    func emptyFile() async throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect {
            try SQLiteStateStore(path: path)
        } throws: { error in
            "\(error)".contains("is an empty file") && "\(error)".contains("every target is then deployed again")
        }
        #expect(
            ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue == 0,
            "left as it was")
        try FileManager.default.removeItem(atPath: path)
        let store = try SQLiteStateStore(path: path)
        #expect(try await store.liveTargets().isEmpty)
    }

    @Test("a file that is not a database is a clear error")
    func notADatabase() throws {
        try Data("this is not sqlite, just text that is long enough to fill a header page".utf8).write(
            to: URL(fileURLWithPath: directory.appending("junk.sqlite")))
        #expect {
            try SQLiteStateStore(path: directory.appending("junk.sqlite"))
        } throws: { error in
            "\(error)".contains("junk.sqlite")
        }
    }

    /// Live targets are held in memory by the process that opened the state (`LiveTargetCache`); every read must
    /// still answer what the table holds, whoever wrote it.
    @Test("live targets held in memory follow this process's writes, another store's, and a person's sqlite3")
    func liveTargetsFollowEveryWriter() async throws {
        func target(_ service: String, _ version: String, phase: TargetPhase = .healthy) -> LiveTarget {
            var target = sampleTarget(phase: phase, version: version)
            target.id = TargetID(service: service, environment: "prod")
            target.updatedAt = Date(timeIntervalSince1970: 1000.123456789)
            return target
        }
        let mine = try SQLiteStateStore(path: path)
        let other = try SQLiteStateStore(path: path)
        func versions() async throws -> [String] {
            let read = try await mine.liveTargets()
            // What this process holds is what a store that never read before reads from the file.
            #expect(read == (try await SQLiteStateStore(path: path).liveTargets()))
            return read.map { "\($0.id.service)=\($0.version ?? "-")/\($0.phase.rawValue.lowercased())" }
        }
        try await mine.apply(StateWrite(targets: [target("a", "1"), target("b", "1")]))
        #expect(try await versions() == ["a=1/healthy", "b=1/healthy"])
        // This process's write, a rollout with dates and JSON in it: read back as the table holds it.
        try await mine.apply(StateWrite(targets: [target("a", "2", phase: .progressing)]))
        #expect(try await versions() == ["a=2/progressing", "b=1/healthy"])
        // Another store (another process) writes: seen at the next read.
        try await other.apply(StateWrite(targets: [target("b", "3")]))
        #expect(try await versions() == ["a=2/progressing", "b=3/healthy"])
        // A person edits the file with sqlite3.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in try db.execute(sql: "UPDATE targets SET version = 'hand' WHERE service = 'a'") }
        try queue.close()
        #expect(try await versions() == ["a=hand/progressing", "b=3/healthy"])
        // Removed elsewhere, added here, removed here.
        try await other.apply(StateWrite(removedTargets: [TargetID(service: "b", environment: "prod")]))
        #expect(try await versions() == ["a=hand/progressing"])
        try await mine.apply(StateWrite(targets: [target("c", "1")]))
        #expect(try await versions() == ["a=hand/progressing", "c=1/healthy"])
        try await mine.apply(StateWrite(removedTargets: [TargetID(service: "a", environment: "prod")]))
        #expect(try await versions() == ["c=1/healthy"])
        // Two writes of this process back to back, then one of the other's in between reads.
        try await mine.apply(StateWrite(targets: [target("c", "2")]))
        try await other.apply(StateWrite(targets: [target("c", "3")]))
        try await mine.apply(StateWrite(targets: [target("c", "4", phase: .progressing)]))
        #expect(try await versions() == ["c=4/progressing"])
    }
}
