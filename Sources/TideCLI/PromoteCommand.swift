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

    @OptionGroup var request: RequestOptions

    func run() async throws {
        let actor = actor.actor
        if let environment {
            try await OperatorVerb.run(
                OperatorRequest(
                    verb: .promote, service: service, environment: environment, full: full, actor: actor,
                    createdAt: Date()),
                global: global, options: request)
        } else if let to {
            try await OperatorVerb.run(
                OperatorRequest(
                    verb: .promoteTo, service: service, environment: to, version: version, actor: actor,
                    createdAt: Date()),
                global: global, options: request, fetch: true)
        }
    }
}

/// A verb about one service in one environment (or, for suspend, every environment): `tide VERB SERVICE --env E`.
protocol TargetVerb: AsyncParsableCommand {
    static var verb: OperatorRequest.Verb { get }
    var options: TargetVerbOptions { get }
}

/// What `tide pause|resume|abort|retry` take: the target, who asks, and how to reach the service.
struct TargetVerbOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The service.") var service: String
    @Option(name: .customLong("env"), help: "The environment.") var environment: String
    @OptionGroup var actor: ActorOptions
    @OptionGroup var request: RequestOptions
}

extension TargetVerb {
    func run() async throws {
        try await OperatorVerb.run(
            OperatorRequest(
                verb: Self.verb, service: options.service, environment: options.environment,
                actor: options.actor.actor, createdAt: Date()),
            global: options.global, options: options.request)
    }
}

struct PauseCommand: TargetVerb {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Hold a rollout where it is.")
    static let verb = OperatorRequest.Verb.pause
    @OptionGroup var options: TargetVerbOptions
}

struct ResumeCommand: TargetVerb {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Let a paused rollout go on.")
    static let verb = OperatorRequest.Verb.resume
    @OptionGroup var options: TargetVerbOptions
}

struct AbortCommand: TargetVerb {
    static let configuration = CommandConfiguration(
        commandName: "abort", abstract: "Send a rollout's traffic back to stable now and hold its version.")
    static let verb = OperatorRequest.Verb.abort
    @OptionGroup var options: TargetVerbOptions
}

struct RetryCommand: TargetVerb {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Try a failed or aborted version again.")
    static let verb = OperatorRequest.Verb.retry
    @OptionGroup var options: TargetVerbOptions
}

/// `tide suspend SERVICE [--env E]` and `tide unsuspend`: Tide leaves the service (in one environment, or in all)
/// alone until unsuspended, as Flux's suspend.
struct SuspendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suspend",
        abstract: "Stop reconciling a service (in one environment, or every one) until tide unsuspend.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The service.") var service: String
    @Option(name: .customLong("env"), help: "Only this environment (default: every one).") var environment: String?
    @OptionGroup var actor: ActorOptions
    @OptionGroup var request: RequestOptions

    func run() async throws {
        try await OperatorVerb.run(
            OperatorRequest(
                verb: .suspend, service: service, environment: environment, actor: actor.actor, createdAt: Date()),
            global: global, options: request)
    }
}

struct UnsuspendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unsuspend", abstract: "Reconcile a suspended service again.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The service.") var service: String
    @Option(name: .customLong("env"), help: "The environment it was suspended in (default: every one).")
    var environment: String?
    @OptionGroup var actor: ActorOptions
    @OptionGroup var request: RequestOptions

    func run() async throws {
        try await OperatorVerb.run(
            OperatorRequest(
                verb: .unsuspend, service: service, environment: environment, actor: actor.actor, createdAt: Date()),
            global: global, options: request)
    }
}
