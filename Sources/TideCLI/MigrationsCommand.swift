import ArgumentParser
import Foundation
import TideDocuments
import TideEngine
import TideState

/// `tide migrations`: where every migration stands in every database, and what Tide will do next about it.
struct MigrationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrations",
        abstract: "Show each migration's phase per database, its owner, and what blocks its contract or down.",
        subcommands: [
            MigrationsListCommand.self, MigrationsDownCommand.self, MigrationsReleaseCommand.self,
            MigrationsAdoptCommand.self, MigrationsReapplyCommand.self,
        ],
        defaultSubcommand: MigrationsListCommand.self)
}

struct MigrationsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Show each migration's phase per database (the default).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("env"), help: "Only the databases of this environment.")
    var environment: String?

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        let entries: MigrationsDocument = try await global.reconciler().migrationReport(environment: environment)
        if json {
            try printJSON(entries)
            return
        }
        guard !entries.isEmpty else {
            print("No migrations" + (environment.map { " in \($0)" } ?? "") + ".")
            return
        }
        print(
            table(
                ["MIGRATION", "DATABASE", "PHASE", "OWNER", "RUNNING ON", "NEXT"],
                entries.map {
                    [
                        $0.migration, "\($0.executor) (\($0.environments.joined(separator: ",")))", $0.phase,
                        $0.owner == nil ? "-" : ($0.ours ? "this install" : "another install"),
                        $0.runningOn.isEmpty ? "-" : $0.runningOn.joined(separator: ", "), $0.next,
                    ]
                }))
    }
}

struct MigrationsDownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Undo a migration's expand (its down) in an environment's database — a person's decision.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var actor: ActorOptions

    @Argument(help: "The migration.")
    var name: String

    @Option(name: .customLong("env"), help: "The environment whose database to undo it in.")
    var environment: String

    @Flag(name: .long, help: "Run it: without --yes the statements are shown and nothing is done.")
    var yes = false

    func run() async throws {
        let reconciler = try global.reconciler()
        do {
            print(
                try await reconciler.migrationDown(
                    name: name, environment: environment, by: actor.actor, confirmed: yes))
        } catch let error as MigrationCommandError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
    }
}

struct MigrationsReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Say that another install's use of a migration no longer holds its contract or down.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var actor: ActorOptions

    @Argument(help: "The migration.")
    var name: String

    @Option(name: .customLong("env"), help: "An environment of the database.")
    var environment: String

    @Option(name: .long, help: "The install whose use is released, as tide migrations shows it (or a part of it).")
    var install: String

    func run() async throws {
        do {
            print(
                try await global.reconciler().migrationRelease(
                    name: name, environment: environment, install: install, by: actor.actor))
        } catch let error as MigrationCommandError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
    }
}

struct MigrationsAdoptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adopt",
        abstract: "Make a migration whose owner install is gone (fresh state, renamed branch) this install's.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var actor: ActorOptions

    @Argument(help: "The migration.")
    var name: String

    @Option(name: .customLong("env"), help: "An environment of the database.")
    var environment: String

    @Option(name: .long, help: "The old owner, as tide migrations --json shows it (or a part of it).")
    var from: String

    func run() async throws {
        do {
            print(
                try await global.reconciler().migrationAdopt(
                    name: name, environment: environment, from: from, by: actor.actor))
        } catch let error as MigrationCommandError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
    }
}

struct MigrationsReapplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reapply",
        abstract: "Apply a migration again on a database whose history went backwards (replaced or restored).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var actor: ActorOptions

    @Argument(help: "The migration.")
    var name: String

    @Option(name: .customLong("env"), help: "The environment whose database to apply it in.")
    var environment: String

    @Flag(name: .long, help: "Run it: without --yes the statements are shown and nothing is done.")
    var yes = false

    func run() async throws {
        do {
            print(
                try await global.reconciler().migrationReapply(
                    name: name, environment: environment, by: actor.actor, confirmed: yes))
        } catch let error as MigrationCommandError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
    }
}
