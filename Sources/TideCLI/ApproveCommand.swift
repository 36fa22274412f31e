import ArgumentParser
import Foundation
import TideEngine
import TideManifest
import TideState

/// `tide approve SERVICE --env E [--version V]`: the sign-off a `approval: manual` environment (or a Policy) waits
/// for — for exactly the version, config and executor the branch head asks to run there.
struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Approve a version of a service for an environment with manual approval.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The service.")
    var service: String

    @Option(name: .customLong("env"), help: "The environment.")
    var environment: String

    @Option(name: .long, help: "The version to approve (default: the version desired there at the branch head).")
    var version: String?

    @OptionGroup var actor: ActorOptions

    func validate() throws {
        if let version, !Naming.isValidVersion(version) {
            throw ValidationError("--version: '\(version)' is not a valid version")
        }
    }

    @OptionGroup var request: RequestOptions

    func run() async throws {
        try await OperatorVerb.run(
            OperatorRequest(
                verb: .approve, service: service, environment: environment, version: version, actor: actor.actor,
                createdAt: Date()),
            global: global, options: request)
    }
}
