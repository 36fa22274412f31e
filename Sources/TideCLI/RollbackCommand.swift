import ArgumentParser
import Foundation
import TideEngine
import TideState

/// `tide rollback SERVICE --env E`: the revert commit that takes a target back, written for you.
struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Commit git reverts of what the live deployment of a service shipped; reconcile then rolls back.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The service.")
    var service: String

    @Option(name: .customLong("env"), help: "The environment.")
    var environment: String

    @Flag(name: .long, help: "Run a reconcile pass right after writing the revert.")
    var reconcile = false

    @OptionGroup var actor: ActorOptions
    @OptionGroup var request: RequestOptions

    func run() async throws {
        try await OperatorVerb.run(
            OperatorRequest(
                verb: .rollback, service: service, environment: environment, reconcile: reconcile, actor: actor.actor,
                createdAt: Date()),
            global: global, options: request, fetch: true)
    }
}
