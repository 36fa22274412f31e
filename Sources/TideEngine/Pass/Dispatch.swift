import Foundation
import Synchronization
import TideGit
public import TideManifest
import TideState

/// What one plan of a pass was made from: a pass makes its first plan when it starts, and (in `tide run`) another
/// whenever something changes while its targets run — a push, an operator's request, a wait ending.
struct PlanRound: Sendable {
    var number: Int
    /// `TargetLocks.mark` before live state was read: a target released after it was read stale.
    var mark: Int
    var resolution: Reconciler.Resolution
    var desired: DesiredState
    var revision: ObjectID
    var planned: Set<TargetID>
    /// When kept candidates' scale-downs still waiting are due.
    var scaleDownsDue: [TargetID: Date]

    /// A target's outcome is due again no later than its kept candidate's scale-down.
    func noteScaleDown(in outcome: inout TargetOutcome) {
        if let due = scaleDownsDue[outcome.target] { outcome.nextDue = [outcome.nextDue, due].compactMap { $0 }.min() }
    }
}

/// Work a dispatch under way takes in: plans asked for while it runs, and who waits for a target's outcome.
struct Intake {
    var active = false
    /// Shutting down: nothing more is taken in.
    var closed = false
    var wanted = false
    /// Wakes the dispatch's watcher (set while it waits).
    var signal: CheckedContinuation<Void, Never>?
    var round = 0
    var awaiting: [(target: TargetID, after: Int, done: CheckedContinuation<TargetOutcome?, Never>)] = []
}

extension Reconciler {
    /// Asks the pass under way to plan again and take what changed into its dispatch, next to the targets it
    /// runs (`tide run`: a push, an operator's request, a wait that ended). False when no dispatch is under way:
    /// the caller starts a pass.
    public func replan() -> Bool {
        let (accepted, signal) = intake.withLock { intake -> (Bool, CheckedContinuation<Void, Never>?) in
            guard intake.active, !intake.closed else { return (false, nil) }
            intake.wanted = true
            defer { intake.signal = nil }
            return (true, intake.signal)
        }
        signal?.resume()
        return accepted
    }

    /// Takes nothing more in (`tide run` is shutting down): the dispatch under way finishes what it runs.
    public func closeIntake() {
        let signal = intake.withLock { intake -> CheckedContinuation<Void, Never>? in
            intake.closed = true
            defer { intake.signal = nil }
            return intake.signal
        }
        signal?.resume()
    }

    /// `replan()`, then the target's outcome from a plan made after now; nil when no dispatch is under way, or it
    /// ended first.
    public func replan(awaiting target: TargetID) async -> TargetOutcome? {
        await withCheckedContinuation { (done: CheckedContinuation<TargetOutcome?, Never>) in
            let (accepted, signal) = intake.withLock { intake -> (Bool, CheckedContinuation<Void, Never>?) in
                guard intake.active, !intake.closed else { return (false, nil) }
                intake.awaiting.append((target, intake.round, done))
                intake.wanted = true
                defer { intake.signal = nil }
                return (true, intake.signal)
            }
            if accepted { signal?.resume() } else { done.resume(returning: nil) }
        }
    }

    /// Makes a plan for the targets not in `running`: resolve, read live state, plan, run due scale-downs. nil when
    /// nothing is accepted to apply. `stopInterrupted`: first stop what an earlier Tide left running.
    func planRound(
        _ number: Int, running: Set<TargetID>, stopInterrupted: Bool = false
    ) async throws -> (PlanRound, [PlannedAction], [TargetID: LiveTarget])? {
        let mark = targetLocks.mark
        let resolution = try await resolve(record: true)
        guard let desired = resolution.desired, let revision = desired.revision else { return nil }
        context.memory.withLock { $0.lastDesired = desired }
        if number == 1 { try await rollouts.stopInterruptedActions() }
        var live = try await store.liveTargets()
        // A write-back a stopped Tide still owed is settled before anything is planned against the branch.
        if number == 1, try await rollouts.settleWriteBacks(live) { live = try await store.liveTargets() }
        if number == 1 { await breakers.load(try await store.executorHealth()) }
        var planner = Planner(
            repository: repository, store: store, hotfixBranch: try onHotfixBranch(),
            contracted: await migrations.contractedMigrations(desired: desired, live: live))
        planner.allowHistoryRewrite = dependencies.allowHistoryRewrite
        var liveByID = live.byID
        var plan = try await planner.plan(desired: desired, live: live, liveByID: liveByID, now: clock.now())
        await migrations.refuseEditedMigrations(&plan, desired: desired)
        var free = plan
        if !running.isEmpty { free.actions.removeAll { running.contains($0.target) } }
        let (scaledDown, due) = try await rollouts.scaleDownKeptCandidates(
            plan: free, live: running.isEmpty ? live : live.filter { !running.contains($0.id) }, desired: desired,
            revision: revision)
        for target in scaledDown { liveByID[target.id] = target }
        for id in running { liveByID[id] = nil }
        let round = PlanRound(
            number: number, mark: mark, resolution: resolution, desired: desired, revision: revision,
            planned: Set(free.actions.map(\.target)), scaleDownsDue: due)
        return (round, plan.actions, liveByID)
    }

    /// Runs the plans' actions: independent targets concurrently (at most `concurrency` at once, first planned
    /// first), a target only once what it waits for has finished — its `dependsOn` in its environment, the same
    /// service in the environments its environment `requires` — and removals last, in order. An error stays with
    /// its target: it is recorded (an event, and the outcome) and the pass goes on with the others.
    ///
    /// While targets run, a new plan asked for (`replan`) is made for the targets not running and its actions
    /// join the queue (a target waiting in it gets the newer action); a running target the new plan left out is
    /// planned again when it ends. Outcomes come back in the order targets were first planned, the newest for each.
    ///
    /// What must never happen: a target run twice at once, or beside an operator's control of it (each holds the
    /// target's turn, `TargetLocks`); an action run on live state read before someone else changed the target (it
    /// is dropped and the target planned again); a request for a plan lost (it is taken in, or `replan` answers
    /// false and the caller starts a pass).
    /// `failure`: a later plan could not be made (the error), so the pass did not take in everything asked of it.
    func dispatch(first: PlanRound, actions: [PlannedAction], live: [TargetID: LiveTarget]) async -> (
        outcomes: [TargetOutcome], last: PlanRound, failure: (any Error)?
    ) {
        var failure: (any Error)?
        var queue = PassQueue(concurrency: concurrency)
        let answered = queue.take(first, actions: actions, live: live)
        intake.withLock {
            $0.active = true
            $0.wanted = false
            $0.round = first.number
        }
        for outcome in answered { deliver(outcome, round: first.number) }
        await withTaskGroup(of: DispatchEvent.self) { group in
            group.addTask { await self.watchIntake() }
            while true {
                for assignment in queue.launchable() {
                    let settled = queue.settled(assignment.prerequisites)
                    group.addTask { await self.runHoldingTarget(assignment, settled: settled) }
                }
                if queue.idle, !queue.replanNeeded, endIntake() { break }
                guard let event = await group.next() else { break }
                switch event {
                case .finished(let outcome, let round):
                    queue.finished(outcome)
                    deliver(outcome, round: round)
                case .stale(let target):
                    queue.dropped(target)
                case .replan:
                    let closed = intake.withLock { intake -> Bool in
                        intake.wanted = false
                        return intake.closed
                    }
                    if !closed {
                        queue.replanNeeded = true
                        group.addTask { await self.watchIntake() }
                    }
                }
                if queue.replanNeeded, !Task.isCancelled, !intake.withLock({ $0.closed }) {
                    queue.replanNeeded = false
                    let number = queue.last.number + 1
                    intake.withLock { $0.round = number }
                    do {
                        if let (round, actions, live) = try await planRound(number, running: queue.running) {
                            let awaited = Set(intake.withLock { $0.awaiting.map(\.target) })
                            let answered = queue.take(
                                round, actions: actions, live: live, rerun: queue.rerun(after: round, awaited: awaited))
                            for outcome in answered { deliver(outcome, round: round.number) }
                        }
                        failure = nil
                    } catch {
                        failure = error  // what was asked waits for the next pass, which the error is reported by
                    }
                }
            }
            group.cancelAll()
        }
        for assignment in queue.removals {
            switch await runHoldingTarget(assignment, settled: [:]) {
            case .finished(let outcome, _): queue.finished(outcome)
            case .stale(let id): queue.finished(deferred(assignment.action, id))
            case .replan: break
            }
        }
        return (queue.outcomes, queue.last, failure)
    }

    /// The outcome of an action dropped because its target changed during the pass: due again at once.
    private func deferred(_ action: PlannedAction, _ id: TargetID) -> TargetOutcome {
        TargetOutcome(
            target: id, result: .progressing, fromVersion: action.fromVersion, toVersion: action.toVersion,
            classification: action.classification, message: "changed during the pass; planned again",
            executorCalls: 0, nextDue: clock.now())
    }

    /// One assignment, holding its target's turn: dropped when the target changed hands after its plan read it.
    private func runHoldingTarget(
        _ assignment: PassQueue.Assignment, settled: [TargetID: TargetOutcome.Result]
    ) async -> DispatchEvent {
        let id = assignment.action.target
        await targetLocks.acquire(id)
        defer { targetLocks.release(id) }
        if targetLocks.changed(id, since: assignment.round.mark) { return .stale(id) }
        let round = assignment.round
        var outcome = await rollouts.run(
            assignment.action, live: assignment.live, desired: round.desired, revision: round.revision,
            settled: settled)
        round.noteScaleDown(in: &outcome)
        return .finished(outcome, round: round.number)
    }

    /// Waits until a plan is asked for (or the dispatch ends).
    private func watchIntake() async -> DispatchEvent {
        await withCheckedContinuation { (wake: CheckedContinuation<Void, Never>) in
            let now = intake.withLock { intake -> Bool in
                if intake.wanted || !intake.active || intake.closed { return true }
                intake.signal = wake
                return false
            }
            if now { wake.resume() }
        }
        return .replan
    }

    /// Ends taking work in, unless a plan was asked for meanwhile (then false: the dispatch goes on).
    private func endIntake() -> Bool {
        let ended = intake.withLock {
            intake -> (CheckedContinuation<Void, Never>?, [CheckedContinuation<TargetOutcome?, Never>])? in
            guard !intake.wanted || intake.closed else { return nil }
            intake.active = false
            defer {
                intake.signal = nil
                intake.awaiting = []
            }
            return (intake.signal, intake.awaiting.map(\.done))
        }
        guard let (signal, waiting) = ended else { return false }
        signal?.resume()
        for waiter in waiting { waiter.resume(returning: nil) }
        return true
    }

    /// Hands a target's outcome to those waiting for one from a plan made after they asked.
    private func deliver(_ outcome: TargetOutcome, round: Int) {
        let ready = intake.withLock { intake -> [CheckedContinuation<TargetOutcome?, Never>] in
            let ready = intake.awaiting.filter { $0.target == outcome.target && $0.after < round }.map(\.done)
            intake.awaiting.removeAll { $0.target == outcome.target && $0.after < round }
            return ready
        }
        for waiter in ready { waiter.resume(returning: outcome) }
    }
}

/// What a dispatch's task group hears.
enum DispatchEvent: Sendable {
    case finished(TargetOutcome, round: Int)
    /// The target changed hands after its plan read it: planned again.
    case stale(TargetID)
    /// Someone asked for a new plan.
    case replan
}

/// The dispatch's book: what waits, what runs, what ended, in the order targets were first planned.
///
/// A free slot goes to the plan ("arrival": the plan that brought a target's current change) with the fewest
/// targets running, and among equals and within one to the first come; a plan with nothing running gets one
/// target going even when the others fill every slot — so a push that arrives while another's rollouts run starts
/// at once, and `--concurrency` bounds each push's targets plus one per later push.
struct PassQueue {
    struct Assignment: Sendable {
        var action: PlannedAction
        var live: LiveTarget?
        var round: PlanRound
        /// What the target waits for in its plan: its `dependsOn` in its environment, the same service upstream.
        var prerequisites: [TargetID] = []
        /// The plan that brought this change of the target.
        var arrival = 0
    }

    let concurrency: Int
    /// Waiting assignments by target, and the targets in queue order.
    private var waiting: [TargetID: Assignment] = [:]
    private var line = Line()
    private var runs = RunningTargets()
    private var waitingPerArrival: [Int: Int] = [:]
    private(set) var removals: [Assignment] = []
    private var ended = Ended()
    /// Running targets a newer plan left out: planned again when they end.
    private var again: Set<TargetID> = []
    private(set) var last: PlanRound!
    var replanNeeded = false

    init(concurrency: Int) {
        self.concurrency = max(1, concurrency)
    }

    var running: Set<TargetID> { runs.targets }
    var idle: Bool { waiting.isEmpty && running.isEmpty }
    /// How `targets` ended in this pass (those that did).
    func settled(_ targets: [TargetID]) -> [TargetID: TargetOutcome.Result] {
        Dictionary(
            targets.compactMap { id in ended.results[id].map { (id, $0.result) } }, uniquingKeysWith: { a, _ in a })
    }

    /// Takes a plan in: its actions join the queue (replacing a waiting older one for the same target, in its
    /// place, and keeping its arrival unless the target's change is new); its removals replace the last plan's. A
    /// running target is left to its run, and planned again when it ends if the new plan wants something else of
    /// it (`rerun`).
    ///
    /// Returns the outcomes of the actions that need no run (`RolloutRunner.outcomeWithoutRunning`): they end here.
    @discardableResult
    mutating func take(
        _ round: PlanRound, actions: [PlannedAction], live: [TargetID: LiveTarget], rerun: Set<TargetID> = []
    ) -> [TargetOutcome] {
        last = round
        again.formUnion(rerun.intersection(running))
        removals = []
        var answered: [TargetOutcome] = []
        for action in actions where !running.contains(action.target) {
            let removal = action.kind == .remove || (action.kind == .suspended && action.toVersion == nil)
            if !removal,
                var outcome = RolloutRunner.outcomeWithoutRunning(
                    action, live: live[action.target], desired: round.desired)
            {
                round.noteScaleDown(in: &outcome)
                if let earlier = waiting.removeValue(forKey: action.target) { countWaiting(earlier.arrival, -1) }
                ended.record(outcome)
                answered.append(outcome)
                continue
            }
            var assignment = Assignment(action: action, live: live[action.target], round: round)
            if removal {
                removals.append(assignment)
                // An older plan's action for it is moot.
                if let earlier = waiting.removeValue(forKey: action.target) { countWaiting(earlier.arrival, -1) }
                continue
            }
            assignment.prerequisites = Self.prerequisites(of: action, in: round, running: running)
            assignment.arrival = round.number
            ended.note(action.target)
            if let earlier = waiting[action.target] {
                let same =
                    earlier.round.desired.target(action.target).map(Self.identity)
                    == round.desired.target(action.target).map(Self.identity)
                if same { assignment.arrival = earlier.arrival }
                countWaiting(earlier.arrival, -1)
            } else {
                line.append(action.target)  // (a target planned again keeps its first place)
            }
            waiting[action.target] = assignment
            countWaiting(assignment.arrival, 1)
        }
        return answered
    }

    /// The running targets whose desired state `round` changed, or that someone waits for: planned again when
    /// their run ends.
    func rerun(after round: PlanRound, awaited: Set<TargetID>) -> Set<TargetID> {
        Set(
            running.filter { id in
                awaited.contains(id) || runs.desired[id] != .some(round.desired.target(id).map(Self.identity))
            })
    }

    /// What a plan asks of a target: its version, config and executor.
    static func identity(_ target: DesiredTarget) -> String {
        "\(target.version)\u{0}\(target.configDigest)\u{0}\(target.executorDigest)"
    }

    /// What a target waits for: its `dependsOn` in its environment and the same service upstream, when its plan
    /// runs them or they are running (from an older plan).
    static func prerequisites(of action: PlannedAction, in round: PlanRound, running: Set<TargetID>) -> [TargetID] {
        let environment = action.target.environment
        let sameEnvironment = action.dependsOn.map { TargetID(service: $0, environment: environment) }
        let upstream = (round.desired.environments[environment]?.requires ?? []).map {
            TargetID(service: action.target.service, environment: $0)
        }
        return (sameEnvironment + upstream).filter { round.planned.contains($0) || running.contains($0) }
    }

    /// The waiting assignments that may start now (the running count allowing), taken out of the queue.
    mutating func launchable() -> [Assignment] {
        let free = concurrency - running.count
        // A plan with targets waiting and none running gets one going even when the others fill every slot: a push
        // never queues behind another one's rollouts.
        let starved = waitingPerArrival.keys.filter { runs.perArrival[$0] == nil }
        guard free > 0 || !starved.isEmpty, !waiting.isEmpty else { return [] }
        let wanted = max(free, 1)
        // The first `wanted` ready ones of each arrival, in queue order.
        var ready: [Int: [TargetID]] = [:]
        line.skipLeft(waiting)
        var full = 0
        for id in line.pending {
            guard let assignment = waiting[id] else { continue }
            guard !running.contains(id),
                !assignment.prerequisites.contains(where: { waiting[$0] != nil || running.contains($0) }),
                ready[assignment.arrival, default: []].count < wanted
            else { continue }
            ready[assignment.arrival, default: []].append(id)
            if ready[assignment.arrival]!.count == wanted {
                full += 1
                if full == waitingPerArrival.count { break }  // enough of every arrival
            }
        }
        line.compact(waiting)
        var started: [Assignment] = []
        if free <= 0 {
            for arrival in starved.sorted() {
                guard let id = ready[arrival]?.first else { continue }
                started.append(launch(id))
            }
            return started
        }
        while started.count < free {
            // The arrival with the fewest running, the first come among equals.
            guard
                let arrival = ready.filter({ !$0.value.isEmpty }).keys.min(by: {
                    (runs.perArrival[$0, default: 0], $0) < (runs.perArrival[$1, default: 0], $1)
                })
            else { break }
            started.append(launch(ready[arrival]!.removeFirst()))
        }
        return started
    }

    /// Takes a ready target out of the queue and counts it running.
    private mutating func launch(_ id: TargetID) -> Assignment {
        let assignment = waiting.removeValue(forKey: id)!
        countWaiting(assignment.arrival, -1)
        runs.start(id, desired: assignment.round.desired.target(id).map(Self.identity), arrival: assignment.arrival)
        return assignment
    }

    private mutating func countWaiting(_ arrival: Int, _ change: Int) {
        waitingPerArrival[arrival, default: 0] += change
        if waitingPerArrival[arrival] == 0 { waitingPerArrival[arrival] = nil }
    }

    mutating func finished(_ outcome: TargetOutcome) {
        runs.stop(outcome.target)
        ended.record(outcome)
        if again.remove(outcome.target) != nil { replanNeeded = true }
    }

    /// The target's assignment was dropped (stale): it is planned again.
    mutating func dropped(_ target: TargetID) {
        runs.stop(target)
        again.remove(target)
        replanNeeded = true
    }

    var outcomes: [TargetOutcome] { ended.outcomes }

    /// The targets in queue order. Entries no longer waiting are skipped (`head` moves past those at the front)
    /// and dropped now and then.
    struct Line {
        private var queue: [TargetID] = []
        private var queued: Set<TargetID> = []
        private var head = 0

        /// The entries a scan looks at.
        var pending: ArraySlice<TargetID> { queue[head...] }

        /// Queues `id` at the end, unless it is queued already.
        mutating func append(_ id: TargetID) {
            if queued.insert(id).inserted { queue.append(id) }
        }

        /// Moves past the front entries no longer waiting (planned again, such a target queues anew).
        mutating func skipLeft(_ waiting: [TargetID: Assignment]) {
            while head < queue.count, waiting[queue[head]] == nil {
                queued.remove(queue[head])
                head += 1
            }
        }

        /// Drops the entries no longer waiting once they are most of the line.
        mutating func compact(_ waiting: [TargetID: Assignment]) {
            guard waiting.count * 2 < queue.count - head else { return }
            queue.removeAll { waiting[$0] == nil }
            queued = Set(queue)
            head = 0
        }
    }

    /// The running targets, with what the plan that started each asked of it (`identity`) and its arrival.
    struct RunningTargets {
        private(set) var targets: Set<TargetID> = []
        private(set) var desired: [TargetID: String?] = [:]
        private var arrival: [TargetID: Int] = [:]
        /// How many run of each arrival.
        private(set) var perArrival: [Int: Int] = [:]

        mutating func start(_ id: TargetID, desired identity: String?, arrival number: Int) {
            targets.insert(id)
            desired[id] = identity
            arrival[id] = number
            perArrival[number, default: 0] += 1
        }

        mutating func stop(_ id: TargetID) {
            targets.remove(id)
            desired[id] = nil
            if let number = arrival.removeValue(forKey: id) {
                perArrival[number, default: 1] -= 1
                if perArrival[number] == 0 { perArrival[number] = nil }
            }
        }
    }

    /// How the targets of this pass ended, in the order they were first planned.
    struct Ended {
        private(set) var results: [TargetID: TargetOutcome] = [:]
        private var order: [TargetID] = []
        private var seen: Set<TargetID> = []

        /// Keeps the target's place in the report.
        mutating func note(_ id: TargetID) {
            if seen.insert(id).inserted { order.append(id) }
        }

        mutating func record(_ outcome: TargetOutcome) {
            // A later plan that found nothing more to do does not hide what an earlier one did in this pass.
            if outcome.result != .unchanged || results[outcome.target] == nil { results[outcome.target] = outcome }
            note(outcome.target)
        }

        var outcomes: [TargetOutcome] { order.compactMap { results[$0] } }
    }
}
