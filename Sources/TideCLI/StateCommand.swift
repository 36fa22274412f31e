import ArgumentParser
import Foundation
import TideState

/// `tide state backup FILE` and `tide state check`: day-2 care of the state file.
struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Back up and check the state store.",
        subcommands: [StateBackupCommand.self, StateCheckCommand.self])
}

/// `tide state backup FILE`: a consistent copy of the state, taken while `tide run` writes (SQLite's online
/// backup). Restore it with the service stopped (see INSTALL.md).
struct StateBackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the state into a new file: a consistent snapshot, safe while tide run writes.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The backup file to create (it must not exist).")
    var file: String

    func run() async throws {
        let store = try global.openStore(for: try? global.openRepository())
        do {
            let copied = try await store.backup(to: file)
            print("backed up \(store.path) to \(file) (\(copied.pages) pages, \(copied.bytes) bytes); integrity ok")
        } catch let error as StateError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
    }
}

/// `tide state check`: the state's integrity and schema.
struct StateCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Check the state's integrity and schema version.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        let store = try global.openStore(for: try? global.openRepository())
        let check = try await store.check()
        if json {
            try printJSON(check)
        } else {
            print("state:       \(store.path)")
            print("integrity:   \(check.integrity.joined(separator: "; "))")
            print(
                "schema:      \(check.schema.last ?? "-") (\(check.schema.count) migrations)\(check.current ? "" : ", NOT current")"
            )
            print("holds:       \(check.targets) targets, \(check.events) events, \(check.deployments) deployments")
        }
        if !check.ok { throw ReportedFailure(message: "tide: the state does not pass its check") }
    }
}
