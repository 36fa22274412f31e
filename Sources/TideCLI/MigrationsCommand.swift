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
        let entries: MigrationsDocument = try await global.reconciler().migrations.migrationReport(
            environment: environment)
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

/// The migration and the environment (its database) a `tide migrations` verb acts on.
struct MigrationOptions: ParsableArguments {
    @Argument(help: "The migration.")
    var name: String

    @Option(name: .customLong("env"), help: "An environment of the migration's database.")
    var environment: String
}

/// Prints what a person's migration verb did; a refusal is the command's error.
private func printOutcome(_ body: () async throws -> String) async throws {
    do {
        print(try await body())
    } catch let error as MigrationCommandError {
        throw ReportedFailure(message: "tide: error: \(error)")
    }
}

struct MigrationsDownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Undo a migration's expand (its down) in an environment's database — a person's decision.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var actor: ActorOptions
    @OptionGroup var migration: MigrationOptions

    @Flag(name: .long, help: "Run it: without --yes the statements are shown and nothing is done.")
    var yes = false

    func run() async throws {
        try await printOutcome {
            try await global.reconciler().migrations.migrationDown(
                name: migration.name, environment: migration.environment, by: actor.actor, confirmed: yes)
        }
    }
}

struct MigrationsReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Say that another install's use of a migration no longer holds its contract or down.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var actor: ActorOptions
    @OptionGroup var migration: MigrationOptions

    @Option(name: .long, help: "The install whose use is released, as tide migrations shows it (or a part of it).")
    var install: String

    func run() async throws {
        try await printOutcome {
            try await global.reconciler().migrations.migrationRelease(
                name: migration.name, environment: migration.environment, install: install, by: actor.actor)
        }
    }
}

struct MigrationsAdoptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adopt",
        abstract: "Make a migration whose owner install is gone (fresh state, renamed branch) this install's.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var actor: ActorOptions
    @OptionGroup var migration: MigrationOptions

    @Option(name: .long, help: "The old owner, as tide migrations --json shows it (or a part of it).")
    var from: String

    func run() async throws {
        try await printOutcome {
            try await global.reconciler().migrations.migrationAdopt(
                name: migration.name, environment: migration.environment, from: from, by: actor.actor)
        }
    }
}

struct MigrationsReapplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reapply",
        abstract: "Apply a migration again on a database whose history went backwards (replaced or restored).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var actor: ActorOptions
    @OptionGroup var migration: MigrationOptions

    @Flag(name: .long, help: "Run it: without --yes the statements are shown and nothing is done.")
    var yes = false

    func run() async throws {
        try await printOutcome {
            try await global.reconciler().migrations.migrationReapply(
                name: migration.name, environment: migration.environment, by: actor.actor, confirmed: yes)
        }
    }
}
