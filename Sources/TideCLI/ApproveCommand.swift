import ArgumentParser
import Foundation
import TideEngine
import TideGit
import TideManifest
import TideState

/// `tide approve SERVICE --env E [--version V]`: the sign-off a `approval: manual` environment waits for.
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

    @Option(name: .long, help: "Why, for the record.")
    var comment: String?

    func validate() throws {
        try refuseControlCharacters(comment, option: "--comment")
        if let version, !Naming.isValidVersion(version) {
            throw ValidationError("--version: '\(version)' is not a valid version")
        }
    }

    func run() async throws {
        let repository = try global.openRepository()
        let store = try global.openStore(for: repository)
        // The tracked branch, never a detached HEAD: approving what happens to be checked out would approve the
        // wrong version.
        let branch: String
        do {
            branch = try global.reconciler().trackedBranch()
        } catch let error as EngineError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
        let head = try repository.resolveCommit(branch: branch)
        let desired: DesiredState
        do {
            desired = try ManifestLoader().load(
                from: GitCommitSource(repository: repository, commit: head, root: global.manifestRoot))
        } catch let error as ManifestError {
            throw ReportedFailure(
                message: "tide: error: \(head.short) does not validate (\(error.diagnostics.count) problem(s)): fix it "
                    + "before approving what it asks for")
        }
        // What does not exist cannot be approved: a typo would otherwise be recorded as a sign-off and wait there.
        let id = TargetID(service: service, environment: environment)
        let target = desired.target(id)
        if target == nil, try await store.liveTarget(id) == nil {
            let known =
                desired.services[service] == nil
                ? "no service '\(service)'" : "\(service) does not run in \(environment)"
            throw ReportedFailure(message: "tide: error: \(known) at \(head.short), and nothing runs there")
        }
        let approved: String
        if let version {
            approved = version
            if version != target?.version {
                printError(
                    "tide: note: \(head.short) asks for \(target?.version ?? "nothing") in \(environment); the approval "
                        + "of \(version) waits until git asks for it")
            }
        } else {
            guard let target else {
                throw ReportedFailure(
                    message: "tide: error: \(service) does not run in \(environment) at \(head.short); "
                        + "name the version with --version")
            }
            approved = target.version
        }
        let who = actor.who(in: repository)
        try await store.apply(
            StateWrite(events: [
                Event(
                    time: Date(), kind: .approvalGranted,
                    target: TargetID(service: service, environment: environment), version: approved,
                    message: "\(approved) approved by \(who)" + (comment.map { ": \($0)" } ?? ""),
                    details: .object(
                        ["by": .string(who)].merging(comment.map { ["comment": .string($0)] } ?? [:]) {
                            $1
                        }))
            ]))
        print("approved \(service) \(approved) for \(environment) (by \(who)); it starts at the next reconcile")
    }
}
