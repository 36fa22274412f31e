import ArgumentParser
import Foundation
import TideEngine
import TideState

/// `tide promote SERVICE --env E [--full]`: move a rollout past its pause (or to the end).
/// `tide promote SERVICE --to ENV`: write a version into the config repo as an environment's version.
struct PromoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Promote a rollout past its pause (--env), or commit a version to an environment (--to).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The service.")
    var service: String

    @Option(name: .customLong("env"), help: "The environment whose rollout to promote.")
    var environment: String?

    @Flag(name: .long, help: "With --env: skip every remaining weight and pause.")
    var full = false

    @Option(name: .long, help: "The environment to commit a version to.")
    var to: String?

    @Option(name: .long, help: "With --to: the version (default: what the environments ENV requires run).")
    var version: String?

    @OptionGroup var actor: ActorOptions

    func validate() throws {
        guard (environment == nil) != (to == nil) else {
            throw ValidationError("name either --env (promote a rollout) or --to (commit a version), not both")
        }
        if full && environment == nil { throw ValidationError("--full goes with --env") }
        if version != nil && to == nil { throw ValidationError("--version goes with --to") }
    }

    func run() async throws {
        let reconciler = try await (environment == nil ? global.fetchedReconciler() : global.reconciler())
        if let environment {
            try await RolloutControlCommand.apply(
                .promote(full: full), service: service, environment: environment, reconciler: reconciler,
                by: actor.actor)
            return
        }
        let to = to!  // validate() requires --env or --to
        do {
            let promotion = try await reconciler.promote(service: service, to: to, version: version)
            print(
                "committed \(promotion.commit.short): \(service) \(promotion.version) in \(to) (\(promotion.file))"
                    + (promotion.from.isEmpty ? "" : ", from \(promotion.from.joined(separator: ", "))"))
            if !promotion.workTreeUpdated && reconciler.repository.workingDirectory != nil {
                print(
                    "note: the work tree was not updated (another branch is checked out, or the file has local changes)"
                )
            }
            print("it deploys at the next reconcile, through \(to)'s gates")
        } catch let error as PromotionError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
    }
}

/// `tide pause|resume|abort|retry SERVICE --env E`.
struct RolloutControlCommand {
    /// Applies the control for `who`, then runs one reconcile pass so the rollout moves right away (abort has
    /// already moved it).
    static func apply(
        _ control: RolloutControl, service: String, environment: String, reconciler: Reconciler, by actor: Actor
    ) async throws {
        do {
            print(try await reconciler.control(control, service: service, environment: environment, by: actor))
        } catch let error as ControlError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
        guard control != .pause && control != .abort else { return }
        let report = try await reconciler.reconcile()
        var failed = false
        for outcome in report.outcomes
        where outcome.target.service == service && outcome.target.environment == environment {
            print("\(outcome.target): \(outcome.result.rawValue)" + (outcome.message.map { ": \($0)" } ?? ""))
            failed = failed || [.failed, .blocked, .held].contains(outcome.result)
        }
        // The pass ran what the control asked for: when that failed again, say so in the exit status.
        if failed {
            throw ReportedFailure(message: "tide: the pass after \(control) failed for \(service)@\(environment)")
        }
    }
}

struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Hold a rollout where it is.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The service.") var service: String
    @Option(name: .customLong("env"), help: "The environment.") var environment: String
    @OptionGroup var actor: ActorOptions

    func run() async throws {
        let reconciler = try global.reconciler()
        try await RolloutControlCommand.apply(
            .pause, service: service, environment: environment, reconciler: reconciler,
            by: actor.actor)
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Let a paused rollout go on.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The service.") var service: String
    @Option(name: .customLong("env"), help: "The environment.") var environment: String
    @OptionGroup var actor: ActorOptions

    func run() async throws {
        let reconciler = try global.reconciler()
        try await RolloutControlCommand.apply(
            .resume, service: service, environment: environment, reconciler: reconciler,
            by: actor.actor)
    }
}

struct AbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abort", abstract: "Send a rollout's traffic back to stable now and hold its version.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The service.") var service: String
    @Option(name: .customLong("env"), help: "The environment.") var environment: String
    @OptionGroup var actor: ActorOptions

    func run() async throws {
        let reconciler = try global.reconciler()
        try await RolloutControlCommand.apply(
            .abort, service: service, environment: environment, reconciler: reconciler,
            by: actor.actor)
    }
}

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Try a failed or aborted version again.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The service.") var service: String
    @Option(name: .customLong("env"), help: "The environment.") var environment: String
    @OptionGroup var actor: ActorOptions

    func run() async throws {
        let reconciler = try global.reconciler()
        try await RolloutControlCommand.apply(
            .retry, service: service, environment: environment, reconciler: reconciler,
            by: actor.actor)
    }
}
