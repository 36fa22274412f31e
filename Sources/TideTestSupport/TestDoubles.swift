public import Foundation
public import TideEngine
public import TideExecutors
public import TideManifest
public import TideState

/// A clock the test moves by hand.
public final class TestClock: TideClock, @unchecked Sendable {
    private var current: Date
    private let lock = NSLock()

    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = start
    }

    public func now() -> Date { lock.withLock { current } }

    public func advance(by seconds: TimeInterval) {
        lock.withLock { current = current.addingTimeInterval(seconds) }
    }
}

/// An executor that records every request and answers from a script of outcomes.
public final class RecordingExecutor: Executor, ExecutorFactory, @unchecked Sendable {
    private var recorded: [ActionRequest] = []
    private var failures: [(ActionRequest) -> ActionResult.Outcome?] = []
    private let lock = NSLock()

    public init() {}

    public var requests: [ActionRequest] { lock.withLock { recorded } }

    public func reset() { lock.withLock { recorded = [] } }

    /// Makes matching requests fail with `outcome`.
    public func fail(
        when matches: @escaping @Sendable (ActionRequest) -> Bool, with outcome: ActionResult.Outcome = .exited(1)
    ) {
        lock.withLock { failures.append { matches($0) ? outcome : nil } }
    }

    public func clearFailures() { lock.withLock { failures = [] } }

    public func perform(_ request: ActionRequest) async -> ActionResult {
        let outcome: ActionResult.Outcome = lock.withLock {
            recorded.append(request)
            return failures.lazy.compactMap { $0(request) }.first ?? .succeeded
        }
        return ActionResult(outcome: outcome, standardError: outcome == .succeeded ? "" : "scripted failure\n")
    }

    public func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor { self }
}

/// Live state and events in memory, with the same semantics as the SQLite store.
public actor InMemoryStateStore: StateStore {
    private var targets: [TargetID: LiveTarget] = [:]
    private var log: [Event] = []
    private var actions: [String: ActionRecord] = [:]
    private var status = RepositoryStatus()
    private var locked = false

    public init() {}

    public func liveTargets() -> [LiveTarget] {
        targets.values.sorted { $0.id < $1.id }
    }

    public func liveTarget(_ id: TargetID) -> LiveTarget? { targets[id] }

    public func events(_ query: EventQuery) -> [Event] {
        Array(log.reversed().filter(query.matches).prefix(query.limit))
    }

    public func repositoryStatus() -> RepositoryStatus { status }

    public func action(_ id: String) -> ActionRecord? { actions[id] }

    public func apply(_ write: StateWrite) {
        for target in write.targets { targets[target.id] = target }
        for id in write.removedTargets { targets[id] = nil }
        for var event in write.events {
            event.id = Int64(log.count + 1)
            log.append(event)
        }
        for action in write.actions { actions[action.id] = action }
        if let newStatus = write.repositoryStatus { status = newStatus }
    }

    @discardableResult
    public nonisolated func withExclusiveLock<T: Sendable>(
        timeout: Double, _ body: () async throws -> T
    ) async throws -> T {
        try await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }

    private func acquire() throws {
        if locked { throw StateError.locked(path: "memory", holder: nil, waitedSeconds: 0) }
        locked = true
    }

    private func release() { locked = false }
}
