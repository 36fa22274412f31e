import ArgumentParser
import Foundation
import TideGit
import TideManifest

/// `tide validate`: load and check the manifests at the branch head, a given revision, or the index.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check the manifests; print every problem as path:line:column: message.")

    @OptionGroup var global: GlobalOptions

    @Flag(
        name: .long,
        help: "Validate what is staged in the index, or in $GIT_INDEX_FILE when git sets it (the pre-commit hook).")
    var staged = false

    @Option(name: .long, help: "Validate this revision instead of the branch head.")
    var revision: String?

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    @Flag(name: .long, help: "Print nothing when the manifests are valid (problems are still printed).")
    var quiet = false

    struct Output: Encodable {
        var valid: Bool
        var source: String
        var revision: String?
        var services: Int
        var environments: Int
        var executors: Int
        var targets: Int
        var diagnostics: [Diagnostic]
    }

    func run() async throws {
        let repository = try global.openRepository()
        let loader = ManifestLoader()
        let sourceName: String
        let revisionID: ObjectID?
        var output = Output(
            valid: false, source: "", revision: nil, services: 0, environments: 0, executors: 0, targets: 0,
            diagnostics: [])
        do {
            let desired: DesiredState
            if staged {
                sourceName = "index"
                revisionID = nil
                // `git commit -a` / `git commit PATH` stage into a temporary index named by GIT_INDEX_FILE.
                let indexFile = ProcessInfo.processInfo.environment["GIT_INDEX_FILE"]
                desired = try loader.load(
                    from: GitIndexSource(repository: repository, root: global.manifestRoot, indexFile: indexFile))
            } else {
                let id = try repository.resolveCommit(branch: revision ?? global.trackedBranch)
                revisionID = id
                sourceName = id.short
                try await global.readCheck(repository).requireReadable(
                    commit: id, root: global.manifestRoot, known: [])
                desired = try loader.load(
                    from: GitCommitSource(repository: repository, commit: id, root: global.manifestRoot))
            }
            output = Output(
                valid: true, source: sourceName, revision: revisionID?.hex, services: desired.services.count,
                environments: desired.environments.count, executors: desired.executors.count,
                targets: desired.targets.count, diagnostics: desired.warnings)
            if !json {
                for warning in desired.warnings { printError("warning: \(warning)") }
            }
            if json {
                try printJSON(output)
            } else if !quiet {
                print(
                    "\(sourceName): valid — \(output.services) services, \(output.environments) environments, "
                        + "\(output.executors) executors, \(output.targets) targets")
            }
        } catch let error as ManifestError {
            output.diagnostics = error.diagnostics
            output.source = staged ? "index" : (revision ?? global.trackedBranch ?? "HEAD")
            if json {
                try printJSON(output)
            } else {
                for diagnostic in error.diagnostics { printError(diagnostic.description) }
            }
            throw ReportedFailure(
                message: json ? "" : "tide: \(error.diagnostics.count) problem(s); nothing was changed")
        } catch let error as GitError {
            throw ReportedFailure(message: "tide: error: \(error)")
        }
    }
}
