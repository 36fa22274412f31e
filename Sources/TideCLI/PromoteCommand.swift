import ArgumentParser
import Foundation
import TideEngine

/// `tide promote SERVICE --to ENV`: write a version into the config repo as an environment's version.
struct PromoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Commit a service's version as its version in an environment (a reviewed, revertable change).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The service.")
    var service: String

    @Option(name: .long, help: "The environment to promote to.")
    var to: String

    @Option(name: .long, help: "The version (default: what the service runs in the environments ENV requires).")
    var version: String?

    func run() async throws {
        let reconciler = try global.reconciler()
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
