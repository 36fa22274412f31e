import ArgumentParser
import Foundation
import TideExecutors
import TideManifest

/// `tide flag SERVICE --env E --key USER`: which side of a split a user gets, from the file a flags executor
/// publishes (the same computation applications make, see `TrafficSplit`).
struct FlagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flag",
        abstract: "Which version a user gets while a flags-executor rollout splits by user.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The service.")
    var service: String

    @Option(name: .customLong("env"), help: "The environment.")
    var environment: String

    @Option(name: .long, help: "The user's key (a user id, an account id: whatever the application hashes).")
    var key: String

    @Flag(name: .long, help: "Print the answer as JSON.")
    var json = false

    struct Output: Encodable {
        var service: String
        var environment: String
        var key: String
        var bucket: Int
        var version: String
        var side: String
        var weight: Int
        var file: String
    }

    func run() async throws {
        let reconciler = try global.reconciler()
        let resolution = try await reconciler.resolve(record: false)
        guard let desired = resolution.desired else {
            throw ReportedFailure(message: "tide: error: no valid revision (\(resolution.head.short) is rejected)")
        }
        let id = TargetID(service: service, environment: environment)
        guard let target = desired.target(id) else {
            throw ReportedFailure(message: "tide: error: \(id) is not in the desired state")
        }
        guard let executor = desired.executors[target.executor], executor.type == .flags else {
            throw ReportedFailure(
                message: "tide: error: \(id) uses executor '\(target.executor)', which is not a flags executor")
        }
        let workingDirectory = global.workingDirectory(reconciler.repository)
        let path = FlagsExecutor.resolve(executor.path ?? "flags.json", in: workingDirectory)
        let file = try FlagsFile.read(path)
        guard let entry = file.targets["\(service)@\(environment)"],
            let (version, reason) = file.side(service: service, environment: environment, key: key)
        else {
            throw ReportedFailure(message: "tide: error: \(path) publishes nothing for \(id) yet")
        }
        let bucket = TrafficSplit.bucket(service: service, environment: environment, key: key)
        if json {
            try printJSON(
                Output(
                    service: service, environment: environment, key: key, bucket: bucket, version: version,
                    side: version == entry.stable ? "stable" : "candidate", weight: entry.weight, file: path))
        } else {
            print("\(key) → \(version) (\(reason))")
        }
    }
}
