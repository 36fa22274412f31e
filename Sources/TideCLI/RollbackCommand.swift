import ArgumentParser
import Foundation
import TideEngine

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

    func run() async throws {
        let reconciler = try await global.fetchedReconciler()
        let commits: [String]
        do {
            commits = try await reconciler.rollbackCommit(service: service, environment: environment).map(\.short)
        } catch let error as RollbackError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
        print("committed \(commits.joined(separator: ", ")): revert of what \(service)@\(environment) runs")
        if reconcile {
            let report = try await reconciler.reconcile()
            for outcome in report.outcomes where outcome.result == .deployed {
                print("\(outcome.target): deployed \(outcome.fromVersion ?? "-") → \(outcome.toVersion ?? "-")")
            }
            if report.hasFailures { throw ReportedFailure(message: "tide: the reconcile pass reported failures") }
        } else {
            print("run tide reconcile to roll back (ROLLBACK passes every gate)")
        }
    }
}
