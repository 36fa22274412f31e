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

    public func set(_ date: Date) {
        lock.withLock { current = date }
    }

    /// A retry's backoff passes at once: the clock moves by it.
    public func sleep(seconds: Double) async { advance(by: seconds) }
}

/// An executor that records every request and answers from a script of outcomes.
public final class RecordingExecutor: Executor, ExecutorFactory, @unchecked Sendable {
    private var recorded: [ActionRequest] = []
    private var failures: [(ActionRequest) -> ActionResult.Outcome?] = []
    private var outputs: [(ActionRequest) -> String?] = []
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

    /// Makes matching requests print `stdout` (what an analysis command provider answers).
    public func respond(when matches: @escaping @Sendable (ActionRequest) -> Bool, with stdout: String) {
        lock.withLock { outputs.insert({ matches($0) ? stdout : nil }, at: 0) }
    }

    public func perform(_ request: ActionRequest) async -> ActionResult {
        let (outcome, stdout): (ActionResult.Outcome, String) = lock.withLock {
            recorded.append(request)
            // Each script is asked once per request (a lazy `first` would ask the matching one twice).
            var outcome = ActionResult.Outcome.succeeded
            for failure in failures {
                if let scripted = failure(request) {
                    outcome = scripted
                    break
                }
            }
            var stdout = ""
            for output in outputs {
                if let scripted = output(request) {
                    stdout = scripted
                    break
                }
            }
            return (outcome, stdout)
        }
        return ActionResult(
            outcome: outcome, standardOutput: stdout, standardError: outcome == .succeeded ? "" : "scripted failure\n")
    }

    public func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor { self }
}

/// Live state and events in memory, with the same semantics as the SQLite store.
public actor InMemoryStateStore: StateStore {
    /// One identity per store, as two state files have two.
    public nonisolated let location = "memory:" + UUID().uuidString

    public func installID() -> String { location }
    private var targets: [TargetID: LiveTarget] = [:]
    private var log: [Event] = []
    private var actions: [String: ActionRecord] = [:]
    private var status = RepositoryStatus()
    private var deploymentLog: [DeploymentRecord] = []
    private var locked = false
    private var health: [String: ExecutorHealth] = [:]

    public init() {}

    public func liveTargets() -> [LiveTarget] {
        targets.values.sorted { $0.id < $1.id }
    }

    public func liveTarget(_ id: TargetID) -> LiveTarget? { targets[id] }

    public func events(_ query: EventQuery) -> [Event] {
        Array(log.reversed().filter(query.matches).prefix(query.limit))
    }

    public func events(after id: Int64, kinds: [Event.Kind], limit: Int) -> [Event] {
        Array(log.filter { ($0.id ?? 0) > id && kinds.contains($0.kind) }.prefix(limit))
    }

    public func repositoryStatus() -> RepositoryStatus { status }

    private var source: SourceStatus?

    public func lastEventID() -> Int64 { Int64(log.count) }

    public func action(_ id: String) -> ActionRecord? { actions[id] }
    public func openActions() -> [ActionRecord] {
        actions.values.filter { $0.status == .started }.sorted { $0.id < $1.id }
    }

    public func executorHealth() -> [ExecutorHealth] { health.values.sorted { $0.executor < $1.executor } }

    public func sourceStatus() -> SourceStatus? { source }

    private var suspended: [Suspension] = []

    public func suspensions() -> [Suspension] { suspended }

    public func apply(_ write: StateWrite) {
        if let status = write.sourceStatus { source = status }
        for lifted in write.liftedSuspensions {
            suspended.removeAll { $0.service == lifted.service && $0.environment == lifted.environment }
        }
        for suspension in write.suspensions {
            suspended.removeAll { $0.service == suspension.service && $0.environment == suspension.environment }
            suspended.append(suspension)
        }
        for entry in write.executorHealth { health[entry.executor] = entry }
        for target in write.targets { targets[target.id] = target }
        for id in write.removedTargets { targets[id] = nil }
        for var event in write.events {
            event.id = Int64(log.count + 1)
            log.append(event)
        }
        for action in write.actions { actions[action.id] = action }
        if let newStatus = write.repositoryStatus { status = newStatus }
        for record in write.deployments {
            if let index = deploymentLog.firstIndex(where: { $0.id == record.id }) {
                deploymentLog[index].failed = record.failed
                deploymentLog[index].failureReason = record.failureReason
                deploymentLog[index].failedAt = record.failedAt
                deploymentLog[index].recoveredAt = record.recoveredAt
            } else {
                deploymentLog.append(record)
            }
        }
    }

    public func deployments(_ query: DeploymentQuery) -> [DeploymentRecord] {
        let matching = deploymentLog.enumerated().filter { _, record in
            if let target = query.target, record.target != target { return false }
            if let ids = query.ids, !ids.contains(record.id) { return false }
            if let commit = query.shippedCommit, !record.changes.contains(where: { $0.commit == commit }) {
                return false
            }
            return true
        }
        return Array(
            matching.sorted { ($0.element.finishedAt, $0.offset) > ($1.element.finishedAt, $1.offset) }
                .map(\.element).prefix(query.limit))
    }

    public func deploymentCounts(_ filter: DeploymentFilter) -> DeploymentCounts {
        let records = deploymentLog.filter(filter.matches)
        var perDay: [Int: Int] = [:]
        for record in records where record.succeeded {
            perDay[Int((record.finishedAt.timeIntervalSince1970 / 86400).rounded(.down)), default: 0] += 1
        }
        return DeploymentCounts(
            total: records.count, succeeded: records.filter(\.succeeded).count, failed: records.filter(\.failed).count,
            unplanned: records.filter(\.unplanned).count, succeededPerDay: perDay)
    }

    public func firstDeployment(_ filter: DeploymentFilter) -> Date? {
        deploymentLog.filter(filter.matchesScope).map(\.finishedAt).min()
    }

    public func leadTimes(_ filter: DeploymentFilter) -> [Double] {
        deploymentLog.filter(filter.matches).flatMap { record in
            record.changes.map { max(0, record.finishedAt.timeIntervalSince($0.committedAt)) }
        }
    }

    public func recoveryTimes(_ filter: DeploymentFilter) -> (seconds: [Double], unrecovered: Int) {
        let failed = deploymentLog.filter(filter.matches).filter(\.failed)
        let seconds = failed.compactMap { record in
            record.recoveredAt.map { max(0, $0.timeIntervalSince(record.failedAt ?? record.finishedAt)) }
        }
        return (seconds, failed.count - seconds.count)
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
