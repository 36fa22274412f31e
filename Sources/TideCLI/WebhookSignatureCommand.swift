import ArgumentParser
import Foundation
import TideService

/// `tide webhook-signature`: signs stdin for the generic webhook with the secret file's generic secret, so a hook
/// never puts the secret on a command line (where `ps` shows it). Prints `sha256=HEX`.
struct WebhookSignatureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook-signature", abstract: "Sign stdin for POST /hooks/generic (for hooks/post-receive).",
        shouldDisplay: false)

    @Option(name: .long, help: "The file --webhook-secret-file names.")
    var secretFile: String

    func run() throws {
        let secrets: WebhookSecrets
        do {
            secrets = try WebhookSecrets(file: secretFile)
        } catch {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
        let body = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
        guard let signature = secrets.signature(for: body) else {
            throw ReportedFailure(message: "tide: error: \(secretFile) has no generic secret")
        }
        print(signature)
    }
}
