import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TideEngine
import TideGit
import TideState

/// Why the loop runs a pass.
enum PassTrigger: Sendable, Equatable {
    /// The poll interval elapsed: fetch, then a pass.
    case poll
    /// A webhook told of a push: fetch at once (past any backoff), then a pass.
    case push
    /// Something a pass waits for fell due (a pause, a bake), or a person acted (`tide approve`, `pause`, …).
    case due
}

struct FetchState {
    var running = false
    var pending = false
    var forced = false
}

/// What `/readyz` and the pass loop share.
struct DaemonHealth: Sendable {
    var revision: ObjectID?
    /// The branch head the last pass saw (a rejected head too).
    var head: ObjectID?
    /// This process fetched the remote repo successfully at least once.
    var fetchedOnce = false
    var lastPassAt: Date?
    var lastPassResult: String?
    var lastPassError: String?
}

/// The reconcile loop of `tide run`: one pass at a time, started by the poll interval (±10 % jitter), a webhook,
/// a due time or an operator's command; triggers that arrive during a pass coalesce into one more pass.
///
/// What must never happen: two passes at once in this process (the loop is serial, and the state lock keeps other
/// processes out); a trigger lost (at most one is buffered, and a buffered one always means "one more pass"; a
/// push's fetch is remembered separately); a shutdown that records an interrupted step as failed.
final class PassLoop: Service, Sendable {
    let configuration: DaemonConfiguration
    let source: RemoteSource?
    let store: any StateStore
    let metrics: DaemonMetrics
    let logger: Logger
    let makeReconciler: @Sendable (String?) throws -> Reconciler
    let health = Mutex(DaemonHealth())
    private let reconciler = Mutex<Reconciler?>(nil)
    private let fetchState = Mutex(FetchState())
    private let stream: AsyncStream<PassTrigger>
    private let continuation: AsyncStream<PassTrigger>.Continuation

    init(
        configuration: DaemonConfiguration, source: RemoteSource?, store: any StateStore, metrics: DaemonMetrics,
        logger: Logger, makeReconciler: @escaping @Sendable (String?) throws -> Reconciler
    ) {
        self.configuration = configuration
        self.source = source
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.makeReconciler = makeReconciler
        (stream, continuation) = AsyncStream.makeStream(of: PassTrigger.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a pass as soon as the current one (if any) ends. For a remote repo, a poll or a push asks for a
    /// fetch instead, which asks for the pass when it is done (so a hung server never holds passes up).
    func trigger(_ reason: PassTrigger) {
        if source != nil && reason != .due {
            requestFetch(forced: reason == .push)
            return
        }
        continuation.yield(reason)
    }

    /// The branch pushes must name to start a pass (nil: not known yet, any).
    func trackedBranch() async -> String? {
        if let source { return await source.branch }
        return try? reconciler.withLock { $0 }?.trackedBranch()
    }

    func run() async throws {
        trigger(.poll)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await self.watchOperators() }
                group.addTask { await self.poll() }
                var timer: Task<Void, Never>?
                for await _ in stream {
                    timer?.cancel()
                    if Task.isShuttingDownGracefully || Task.isCancelled { break }  // no pass starts after SIGTERM
                    let due = await pass()
                    if Task.isCancelled { break }
                    timer = wake(at: due)
                }
                timer?.cancel()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.continuation.finish()  // the pass under way ends; no other starts
        }
    }

    /// Polls every interval (±jitter), whatever else starts passes meanwhile.
    private func poll() async {
        while !Task.isCancelled {
            let jitter = Double.random(in: -configuration.jitter...configuration.jitter)
            try? await Task.sleep(for: .milliseconds(Int(configuration.interval * (1 + jitter) * 1000)))
            if Task.isCancelled { return }
            trigger(.poll)
        }
    }

    /// A pass when something a pass waits for falls due (a pause, a bake): at least a second from now.
    private func wake(at due: Date?) -> Task<Void, Never>? {
        guard let due else { return nil }
        let delay = max(1, due.timeIntervalSinceNow + 0.05)
        guard delay < configuration.interval * 2 else { return nil }  // the poll comes first
        return Task {
            try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            if !Task.isCancelled { self.trigger(.due) }
        }
    }

    /// Starts a fetch unless one runs; one asked for meanwhile runs after it. Each ends with a pass, and a failed
    /// one is tried again when its backoff ends (before the next poll when that is sooner).
    private func requestFetch(forced: Bool) {
        let start = fetchState.withLock { state -> Bool in
            if state.running {
                state.pending = true
                state.forced = state.forced || forced
                return false
            }
            state.running = true
            return true
        }
        guard start, let source else { return }
        Task {
            var force = forced
            while true {
                let outcome = await source.fetch(force: force)
                record(outcome)
                continuation.yield(.due)
                if case .failed = outcome, let retry = await source.retryAt {
                    scheduleRetry(at: retry)
                }
                let again = fetchState.withLock { state -> Bool? in
                    guard state.pending else {
                        state.running = false
                        return nil
                    }
                    state.pending = false
                    defer { state.forced = false }
                    return state.forced
                }
                guard let again else { return }
                force = again
            }
        }
    }

    private func scheduleRetry(at date: Date) {
        let delay = date.timeIntervalSinceNow
        guard delay < configuration.interval else { return }  // the poll comes first
        Task {
            try? await Task.sleep(for: .milliseconds(Int(max(0.05, delay) * 1000)))
            self.requestFetch(forced: false)
        }
    }

    private func record(_ outcome: RemoteSource.FetchOutcome) {
        switch outcome {
        case .fetched(let head):
            health.withLock { $0.fetchedOnce = true }
            metrics.fetch(result: "success")
            logger.debug("fetch", metadata: ["revision": "\(head.short)", "result": "success"])
        case .failed(let why):
            metrics.fetch(result: "failure")
            logger.warning("fetch", metadata: ["result": "failure", "error": "\(why)"])
        case .backingOff:
            break
        }
    }

    /// One pass; returns when the next pass falls due by itself.
    private func pass() async -> Date? {
        guard let reconciler = await currentReconciler() else { return nil }
        let start = ContinuousClock.now
        var result = "error"
        var due: Date?
        var metadata: Logger.Metadata = [:]
        do {
            let report = try await reconciler.reconcile(lockTimeout: configuration.lockTimeout)
            result =
                Task.isCancelled
                ? "interrupted" : report.hasFailures ? "failed" : report.rejected.isEmpty ? "success" : "rejected"
            due = report.nextDue
            metadata["revision"] = "\((report.applied ?? report.head).short)"
            var counts: [String: Int] = [:]
            for outcome in report.outcomes { counts[outcome.result.rawValue, default: 0] += 1 }
            for (name, count) in counts where name != "unchanged" { metadata[name] = "\(count)" }
            health.withLock {
                $0.revision = report.applied ?? report.head
                $0.head = report.head
                $0.lastPassError = nil
            }
        } catch is CancellationError {
            result = "interrupted"
        } catch {
            metadata["error"] = "\(error)"
            health.withLock { $0.lastPassError = "\(error)" }
        }
        let elapsed = ContinuousClock.now - start
        metrics.pass(result: result, duration: elapsed)
        health.withLock {
            $0.lastPassAt = Date()
            $0.lastPassResult = result
        }
        metadata["result"] = "\(result)"
        metadata["duration"] =
            "\(String(format: "%.3f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))"
        logger.log(level: result == "success" ? .info : .warning, "pass", metadata: metadata)
        return due
    }

    /// The reconciler, made once the branch is known (a remote's default branch is learnt by its first fetch).
    private func currentReconciler() async -> Reconciler? {
        if let existing = reconciler.withLock({ $0 }) { return existing }
        var branch = configuration.branch
        if let source {
            guard let fetched = await source.branch, await source.status.fetchedRevision != nil else { return nil }
            branch = fetched
        }
        do {
            let made = try makeReconciler(branch)
            reconciler.withLock { $0 = made }
            return made
        } catch {
            health.withLock { $0.lastPassError = "\(error)" }
            logger.error("cannot open the config repo", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// What people do with the other verbs (`tide approve`, `pause`, `resume`, `abort`, `retry`, `promote`) is
    /// acted on at once: the newest such event is checked every second.
    private func watchOperators() async {
        let kinds: [Event.Kind] = [
            .approvalGranted, .rolloutPaused, .rolloutResumed, .rolloutPromoted, .rolloutAborted, .rolloutRetried,
            .promotionCommitted, .revertCommitted,
        ]
        var seen = try? await store.events(EventQuery(kinds: kinds, limit: 1)).first
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            if let newest = try? await store.events(EventQuery(kinds: kinds, limit: 1)).first, newest != seen {
                seen = newest
                trigger(.due)
            }
            // A local repository is read directly: a commit there is seen within a second, no fetch needed.
            if source == nil, let reconciler = reconciler.withLock({ $0 }),
                let head = try? reconciler.repository.resolveCommit(branch: reconciler.trackedBranch()),
                let seenByPass = health.withLock({ $0.head }), head != seenByPass
            {
                health.withLock { $0.head = head }  // one pass per new head, however long it takes
                trigger(.due)
            }
        }
    }
}
