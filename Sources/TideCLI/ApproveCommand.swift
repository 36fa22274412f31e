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

    func run() async throws {
        let reconciler = try global.reconciler()
        do {
            let approval = try await reconciler.approve(
                service: service, environment: environment, version: version, by: actor.actor)
            if let note = approval.note { printError("tide: note: \(note)") }
            print(
                "approved \(service) \(approval.version) (config \(approval.configDigest.prefix(8)), executor "
                    + "\(approval.executorDigest.prefix(8))) for \(environment) (by \(actor.actor)); it starts at "
                    + "the next reconcile")
        } catch let error as ApprovalError {
            throw ReportedFailure(message: "tide: error: \(error)")
        } catch let error as EngineError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
    }
}
