public import ArgumentParser
import Foundation

/// `tide`: the root command. Exit status 0 is fine, 1 a failure Tide reports (invalid manifests, a failed
/// rollout), 2 a usage error.
public struct TideCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tide",
        abstract: "A GitOps deployment reconciler: commit a manifest change to deploy, git revert to roll back.",
        version: "0.1.0",
        subcommands: [
            InitCommand.self, ValidateCommand.self, PlanCommand.self, ReconcileCommand.self, StatusCommand.self,
            HistoryCommand.self, DoraCommand.self, ApproveCommand.self, PromoteCommand.self,
            ReadinessCommand.self, RollbackCommand.self, PauseCommand.self, ResumeCommand.self, AbortCommand.self,
            RetryCommand.self, SuspendCommand.self, UnsuspendCommand.self, FlagCommand.self, MigrationsCommand.self,
            RunCommand.self, StateCommand.self, GitRemoteCommand.self,
            WebhookSignatureCommand.self, GitCheckCommand.self,
        ])

    public init() {}

    /// Parses `arguments` (the process's own when nil), runs the command and exits with Tide's exit codes.
    public static func main(_ arguments: [String]? = nil) async -> Never {
        lineBufferStandardOutput()
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch let failure as ReportedFailure {
            if !failure.message.isEmpty { printError(failure.message) }
            Foundation.exit(1)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            if code == .validationFailure {
                printError(fullMessage(for: error))
                Foundation.exit(2)
            }
            if error is ExitCode { Foundation.exit(code.rawValue) }
            printError("tide: error: \(String(describing: error))")
            Foundation.exit(1)
        }
    }
}

/// A failure already explained to the user (exit status 1); `message` is printed to stderr if not empty.
struct ReportedFailure: Error {
    var message: String = ""
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
}
