import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TideEngine
import TideExecutors
import TideGit
import TideManifest
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
    /// When a pass last ran to its end (a result other than error).
    var lastSuccessfulPassAt: Date?
    /// The targets of the last pass's desired state.
    var targets: [TargetID] = []
    /// Why the branch head is not applied (rejected: invalid, unsigned, no longer verifying, rewritten), if it is not.
    var rejection: String?
    /// The last pass applied nothing: its head is rejected and no earlier revision is good (or still verifies).
    var nothingApplied = false
    /// Passes in a row that could not run (an error, not a failed target): a full disk, a lost state.
    var consecutivePassErrors = 0
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
    /// Where operator verbs hand their requests over (nil: the store keeps none; verbs act themselves).
    let channel: (any OperatorChannel)?
    let metrics: DaemonMetrics
    let logger: Logger
    let makeReconciler: @Sendable (String?) throws -> Reconciler
    let health = Mutex(DaemonHealth())
    /// This process, as its heartbeat records it.
    let identity: ServiceRecord
    private let reconciler = Mutex<Reconciler?>(nil)
    private let fetchState = Mutex(FetchState())
    private let passes = Mutex(PassTracking())
    private let stream: AsyncStream<PassTrigger>
    private let continuation: AsyncStream<PassTrigger>.Continuation

    /// Passes started and finished, and who waits for the next one to finish.
    struct PassTracking {
        var started = 0
        var ended = 0
        /// The last passes' reports, by number: a verb's outcome includes a pass that was running while it was
        /// carried out (that pass may have done what the verb asked for).
        var recent: [(number: Int, report: ReconcileReport?)] = []
        var waiters: [(after: Int, done: CheckedContinuation<ReconcileReport?, Never>)] = []
        /// The loop stopped: no pass comes any more.
        var stopped = false
    }

    /// When polls, wake-ups and fetch retries fall due, and the times a pass records (a test clock moves by
    /// itself). Heartbeats and waits for other processes use the real clocks.
    let clock: any TideClock

    init(
        configuration: DaemonConfiguration, source: RemoteSource?, store: any StateStore,
        channel: (any OperatorChannel)?, metrics: DaemonMetrics, logger: Logger, clock: any TideClock = SystemClock(),
        makeReconciler: @escaping @Sendable (String?) throws -> Reconciler
    ) {
        self.clock = clock
        self.configuration = configuration
        self.source = source
        self.store = store
        self.channel = channel
        self.metrics = metrics
        self.logger = logger
        self.makeReconciler = makeReconciler
        let pid = getpid()
        let host = ProcessTable.hostName
        let start = ProcessTable.startTime(pid) ?? 0
        let now = Date()
        identity = ServiceRecord(
            id: "\(host):\(pid):\(start)", host: host, pid: pid, processStart: start,
            user: Actor.current().user, listen: "\(configuration.host):\(configuration.port)", startedAt: now,
            heartbeatAt: now)
        (stream, continuation) = AsyncStream.makeStream(of: PassTrigger.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a pass as soon as the current one (if any) ends. For a remote repo, a poll or a push asks for a
    /// fetch instead, which asks for the pass when it is done (so a hung server never holds passes up).
    func trigger(_ reason: PassTrigger) {
        if source != nil && reason != .due {
            requestFetch(forced: reason == .push)
            return
        }
        due(reason)
    }

    /// Something is due: the pass under way plans again and takes it in beside the targets it runs, or (none under
    /// way) a pass starts.
    private func due(_ reason: PassTrigger) {
        if let reconciler = reconciler.withLock({ $0 }), reconciler.replan() { return }
        continuation.yield(reason)
    }

    /// The branch pushes must name to start a pass (nil: not known yet, any).
    func trackedBranch() async -> String? {
        if let source { return await source.branch }
        return try? reconciler.withLock { $0 }?.trackedBranch()
    }

    func run() async throws {
        trigger(.poll)
        defer { finishWaiters() }
        if let channel {
            // Recorded before anything else runs: from now on, verbs hand their requests to this process.
            try? await channel.beat(identity)
        }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await self.watchOperators() }
                group.addTask { await self.poll() }
                if self.channel != nil {
                    group.addTask { await self.heartbeat() }
                    group.addTask { await self.operatorRequests() }
                }
                var timer: Task<Void, Never>?
                for await _ in stream {
                    timer?.cancel()
                    if Task.isShuttingDownGracefully || Task.isCancelled { break }  // no pass starts after SIGTERM
                    let due = await pass()
                    if Task.isCancelled { break }
                    timer = wake(at: due)
                }
                timer?.cancel()
                // No pass comes any more: whoever waits for one is answered before the tasks are waited for.
                finishWaiters()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            // The pass under way ends without taking anything more in; no other starts.
            self.reconciler.withLock { $0 }?.closeIntake()
            self.continuation.finish()
        }
        // Stopped: verbs act by themselves again.
        try? await channel?.removeService(identity.id)
    }

    /// Refreshes this process's record every second, so verbs know a live service holds the state; exits (status
    /// 1) when the state file was replaced under it.
    private func heartbeat() async {
        var record = identity
        while !Task.isCancelled {
            await Monotonic.pause(seconds: 1)
            if Task.isCancelled { return }
            do {
                try channel?.checkNotReplaced()
            } catch {
                // At once, not after the pass under way: it would go on recording to the old file while verbs,
                // seeing no heartbeat, act on the new one. What runs is journaled; the restart takes it up.
                logger.error("state replaced", metadata: ["error": "\(error)"])
                BoundedProcess.killAll()
                fflush(nil)  // every output stream: the log line above is out before the exit
                _exit(1)
            }
            record.heartbeatAt = Date()
            try? await channel?.beat(record)
        }
    }

    /// Takes the requests operators' verbs hand over, four times a second, and carries them out as they come:
    /// one target's requests one at a time, oldest first; other targets' beside them (a verb on one target never
    /// waits for another's pass).
    private func operatorRequests() async {
        guard let channel else { return }
        let claimant = "tide run (pid \(identity.pid))"
        var chains: [String: Task<Void, Never>] = [:]
        while !Task.isCancelled {
            if let requests = try? await channel.claimRequests(by: claimant) {
                for request in requests {
                    let key = "\(request.service)@\(request.environment ?? "*")"
                    let before = chains[key]
                    chains[key] = Task {
                        await before?.value
                        await self.carryOut(request, channel: channel, claimant: claimant)
                    }
                }
            }
            await Monotonic.pause(seconds: 0.25)
        }
        for chain in chains.values { await chain.value }
    }

    /// Carries one request out with this process's reconciler (its working directory, user, environment,
    /// credentials), runs the pass it calls for, and records the outcome for the waiting CLI.
    private func carryOut(_ request: OperatorRequest, channel: any OperatorChannel, claimant: String) async {
        guard let id = request.id else { return }
        let target = request.environment.map { "\(request.service)@\($0)" } ?? request.service
        var outcome: OperatorOutcome
        if let reconciler = await currentReconciler() {
            if [.promoteTo, .rollback].contains(request.verb), let source {
                // Commits are written on the remote's current head.
                let fetched = await source.fetch(force: true)
                record(fetched)
            }
            var carried = request
            carried.actor.via = claimant
            // Passes that end from now on may act on what the verb changes (one may be running already).
            let endedBefore = passes.withLock { $0.ended }
            outcome = await reconciler.carryOut(carried)
            if outcome.status == 0, case .target(let id, _) = outcome.followUp,
                let acted = await reconciler.replan(awaiting: id)
            {
                // A pass under way planned again and ran the target next to the others.
                outcome.add(acted)
            } else if outcome.status == 0, outcome.followUp != .none {
                if let report = await passAndWait() {
                    let during = passes.withLock { tracking in
                        tracking.recent.filter { $0.number > endedBefore }.compactMap(\.report)
                    }
                    outcome.add(during.isEmpty ? [report] : during)
                } else {
                    outcome.passFailed(ControlError(description: health.withLock { $0.lastPassError } ?? "no pass ran"))
                }
            }
        } else {
            outcome = .failure("tide run has no revision to act on yet (see /readyz)")
        }
        metrics.operatorRequest(request.verb.rawValue, result: outcome.status == 0 ? "done" : "refused")
        logger.log(
            level: outcome.status == 0 ? .info : .warning, "operator",
            metadata: [
                "verb": "\(request.verb.rawValue)", "target": "\(target)", "by": "\(request.actor)",
                "request": "\(id)", "result": "\(outcome.status == 0 ? "done" : "refused")",
                "message": "\((outcome.output + outcome.errors).joined(separator: " | "))",
            ])
        try? await channel.finish(
            id, output: outcome.output.joined(separator: "\n"), errorOutput: outcome.errors.joined(separator: "\n"),
            exitStatus: outcome.status, at: clock.now())
    }

    /// Asks for a pass and waits until one that started after now has finished; its report (nil when it failed
    /// or the loop stopped).
    func passAndWait() async -> ReconcileReport? {
        let report: ReconcileReport? = await withCheckedContinuation { done in
            let stopped = passes.withLock { tracking -> Bool in
                if tracking.stopped { return true }
                tracking.waiters.append((after: tracking.started, done: done))
                return false
            }
            if stopped { done.resume(returning: nil) }
            continuation.yield(.due)  // a pass that starts after now, not one under way planning again
        }
        return report
    }

    /// A pass numbered `number` ended: whoever waited for a pass started after theirs gets its report.
    private func passEnded(_ number: Int, report: ReconcileReport?) {
        let ready = passes.withLock { tracking -> [CheckedContinuation<ReconcileReport?, Never>] in
            tracking.ended = max(tracking.ended, number)
            tracking.recent.append((number, report))
            if tracking.recent.count > 8 { tracking.recent.removeFirst(tracking.recent.count - 8) }
            let ready = tracking.waiters.filter { $0.after < number }.map(\.done)
            tracking.waiters.removeAll { $0.after < number }
            return ready
        }
        for waiter in ready { waiter.resume(returning: report) }
    }

    /// The loop stopped: nobody waits for a pass any more.
    private func finishWaiters() {
        let all = passes.withLock { tracking -> [CheckedContinuation<ReconcileReport?, Never>] in
            tracking.stopped = true
            defer { tracking.waiters = [] }
            return tracking.waiters.map(\.done)
        }
        for waiter in all { waiter.resume(returning: nil) }
    }

    /// Polls every interval (±jitter), whatever else starts passes meanwhile.
    private func poll() async {
        while !Task.isCancelled {
            let jitter = Double.random(in: -configuration.jitter...configuration.jitter)
            await clock.sleep(seconds: configuration.interval * (1 + jitter))
            if Task.isCancelled { return }
            trigger(.poll)
        }
    }

    /// A pass when something a pass waits for falls due (a pause, a bake): at least a second from now.
    private func wake(at due: Date?) -> Task<Void, Never>? {
        guard let due else { return nil }
        let delay = max(1, due.timeIntervalSince(clock.now()) + 0.05)
        guard delay < configuration.interval * 2 else { return nil }  // the poll comes first
        return Task {
            await clock.sleep(seconds: delay)
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
                due(.due)
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

    /// Returns once no fetch runs or is pending (at most `seconds`).
    func fetchesDone(within seconds: Double) async {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while fetchState.withLock({ $0.running || $0.pending }), ContinuousClock.now < deadline {
            await Monotonic.pause(seconds: 0.05)
        }
    }

    private func scheduleRetry(at date: Date) {
        let delay = date.timeIntervalSince(clock.now())
        guard delay < configuration.interval else { return }  // the poll comes first
        Task {
            await clock.sleep(seconds: max(0.05, delay))
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
        let number = passes.withLock { tracking -> Int in
            tracking.started += 1
            return tracking.started
        }
        var finished: ReconcileReport?
        defer { passEnded(number, report: finished) }
        guard let reconciler = await currentReconciler() else { return nil }
        let start = ContinuousClock.now
        var result = "error"
        var due: Date?
        var metadata: Logger.Metadata = [:]
        do {
            let report = try await reconciler.reconcile(lockTimeout: configuration.lockTimeout)
            finished = report
            result = Task.isCancelled ? "interrupted" : Self.result(of: report)
            if !report.rejected.isEmpty && health.withLock({ $0.head }) != report.head {
                logger.error(
                    "revision rejected",
                    metadata: [
                        "revision": "\(report.head.short)", "problems": "\(report.rejected.count)",
                        "first": "\(report.rejected.first?.description ?? "")",
                        "applied": "\(report.applied?.short ?? "nothing")",
                    ])
            }
            due = report.nextDue
            metadata["revision"] = "\((report.applied ?? report.head).short)"
            var counts: [String: Int] = [:]
            for outcome in report.outcomes { counts[outcome.result.rawValue, default: 0] += 1 }
            for (name, count) in counts where name != "unchanged" { metadata[name] = "\(count)" }
            health.withLock {
                $0.revision = report.applied ?? (report.rejected.isEmpty ? report.head : nil)
                $0.head = report.head
                $0.rejection = report.rejected.first.map {
                    "head \(report.head.short) is rejected: \($0.message)"
                        + (report.rejected.count > 1 ? " (and \(report.rejected.count - 1) more)" : "")
                }
                $0.nothingApplied = report.applied == nil && !report.rejected.isEmpty
                $0.consecutivePassErrors = 0
                $0.lastPassError = nil
                $0.lastSuccessfulPassAt = clock.now()
                $0.targets = report.outcomes.map(\.target)
            }
        } catch is CancellationError {
            result = "interrupted"
        } catch {
            metadata["error"] = "\(error)"
            // Waiting for another process's lock (an operator's long `tide reconcile`) is not a service that
            // cannot work.
            let contended = if case StateError.locked = error { true } else { false }
            health.withLock {
                $0.lastPassError = "\(error)"
                if !contended { $0.consecutivePassErrors += 1 }
            }
        }
        let elapsed = ContinuousClock.now - start
        metrics.pass(result: result, duration: elapsed)
        health.withLock {
            $0.lastPassAt = clock.now()
            $0.lastPassResult = result
        }
        metadata["result"] = "\(result)"
        metadata["duration"] =
            "\(String(format: "%.3f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))"
        logger.log(level: result == "success" ? .info : .warning, "pass", metadata: metadata)
        return due
    }

    /// A pass's result for `tide_reconcile_passes_total`: failed when a target failed (or was blocked by one) in
    /// it, or a migration failed; else rejected when the head is rejected; else held when a failed version waits
    /// for a person; else success. A held version alone is not a failure of every poll.
    static func result(of report: ReconcileReport) -> String {
        if report.outcomes.contains(where: { [.failed, .blocked].contains($0.result) })
            || report.migrations.contains(where: { $0.result == .failed })
        {
            return "failed"
        }
        if !report.rejected.isEmpty { return "rejected" }
        if report.outcomes.contains(where: { $0.result == .held }) { return "held" }
        return "success"
    }

    /// The desired state the last pass applied.
    func currentDesired() -> DesiredState? {
        reconciler.withLock { $0 }?.lastAppliedDesiredState
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
            // A contract or a down is decided on the newest head: a push announced during the pass is fetched first.
            made.beforeIrreversible { [weak self] in await self?.fetchesDone(within: 15) }
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
            .promotionCommitted, .revertCommitted, .targetUnsuspended,
        ]
        var seen = try? await store.events(EventQuery(kinds: kinds, limit: 1)).first
        while !Task.isCancelled {
            await Monotonic.pause(seconds: 1)
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
