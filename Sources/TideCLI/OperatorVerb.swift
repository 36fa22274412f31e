import ArgumentParser
import Foundation
import TideEngine
import TideManifest
import TideState

/// `--no-wait`, for the verbs that a running `tide run` carries out.
struct RequestOptions: ParsableArguments {
    @Flag(
        name: .customLong("no-wait"),
        help: "When tide run holds the state: hand the request over and return without waiting for its outcome.")
    var noWait = false
}

/// How an operator verb (approve, promote, pause, resume, abort, retry, rollback, suspend, unsuspend) runs.
///
/// When a `tide run` holds the state (its record is there and its process is alive on this host), the verb is a
/// request the service carries out within a second, in its own context — working directory, user, environment,
/// credentials — so its log, events and metrics see it whoever asked; the CLI waits for the outcome and prints it.
/// Without a service, the verb runs here through the very same code (`Reconciler.carryOut`), with the same
/// resolution of paths and the same environment for executors — never the caller's directory.
///
/// What must never happen: a verb carried out twice (a request is claimed once, atomically); a verb carried out
/// by this process while a live service holds the state; a request carried out after the CLI gave up on it
/// (it is cancelled only while nobody has taken it).
enum OperatorVerb {
    /// How long a live service may take to pick a request up before the CLI gives up on it.
    static let claimDeadline = 10.0

    static func run(
        _ request: OperatorRequest, global: GlobalOptions, options: RequestOptions, fetch: Bool = false
    ) async throws {
        let store = try global.openStore(for: try? global.openRepository())
        if let service = try await store.services().first(where: \.isAlive) {
            try await handOver(request, to: service, store: store, wait: !options.noWait)
            return
        }
        let reconciler = try await fetch ? global.fetchedReconciler() : global.reconciler()
        var outcome = await reconciler.carryOut(request)
        if outcome.status == 0, outcome.followUp != .none {
            do {
                outcome.add(try await reconciler.reconcile())
            } catch {
                outcome.passFailed(error)
            }
        }
        try report(outcome)
    }

    /// Prints an outcome as the verb's output and exit status.
    static func report(_ outcome: OperatorOutcome) throws {
        for line in outcome.output { print(line) }
        for line in outcome.errors { printError(line) }
        if outcome.status != 0 { throw ReportedFailure() }
    }

    private static func handOver(
        _ request: OperatorRequest, to service: ServiceRecord, store: SQLiteStateStore, wait: Bool
    ) async throws {
        let id = try await store.submit(request)
        guard wait else {
            print("request \(id) handed to \(service.description); tide history shows what it did")
            return
        }
        let start = ContinuousClock.now
        var waitingSaid = false
        while true {
            guard let current = try await store.request(id) else {
                throw ReportedFailure(message: "tide: error: request \(id) disappeared from the state")
            }
            switch current.status {
            case .done:
                var outcome = OperatorOutcome()
                outcome.output = (current.output ?? "").split(separator: "\n", omittingEmptySubsequences: false)
                    .map(String.init).filter { !$0.isEmpty }
                outcome.errors = (current.errorOutput ?? "").split(separator: "\n").map(String.init)
                outcome.status = current.exitStatus ?? 1
                try report(outcome)
                return
            case .cancelled:
                throw ReportedFailure(message: "tide: error: request \(id) was cancelled")
            case .pending where ContinuousClock.now - start > .seconds(claimDeadline):
                if try await store.cancelIfPending(id) {
                    throw ReportedFailure(
                        message: "tide: error: \(service.description) holds the state but did not take request \(id) "
                            + "within \(Int(claimDeadline)) s; nothing was done (check the service: its log, "
                            + "curl its /readyz)")
                }
            case .running where !waitingSaid && ContinuousClock.now - start > .seconds(30):
                printError("tide: \(service.description) is carrying out request \(id); waiting for it to finish")
                waitingSaid = true
            default:
                break
            }
            try await Monotonic.sleep(seconds: 0.1)
        }
    }
}
