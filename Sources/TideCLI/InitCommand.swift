import ArgumentParser
import Foundation
import TideGit

/// `tide init DIR`: a new config repo with the example manifests and demo executor, committed, with the
/// pre-commit hook installed.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a config repo with example manifests and a first commit.")

    @Argument(help: "The directory to create (must not exist, or be empty).")
    var directory: String

    @Option(name: .long, help: "The branch of the first commit.")
    var branch: String = "main"

    func run() async throws {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue, (try fileManager.contentsOfDirectory(atPath: directory)).isEmpty else {
                throw ReportedFailure(message: "tide: error: \(directory) exists and is not an empty directory")
            }
        }
        let repository: Repository
        do {
            repository = try Repository.create(at: directory, initialBranch: branch)
        } catch {
            throw ReportedFailure(message: "tide: error: cannot create repository in \(directory): \(error)")
        }
        let root = repository.workingDirectory ?? directory
        for file in ExampleConfigRepo.files {
            let url = URL(fileURLWithPath: root).appendingPathComponent(file.path)
            try fileManager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(file.contents.utf8).write(to: url)
            if file.executable {
                try fileManager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
            }
        }
        let commit = try repository.commitWorkingFiles(
            ExampleConfigRepo.files.map(\.path), message: "Initial Tide config repo\n\nCreated by `tide init`.\n")

        let hook = URL(fileURLWithPath: repository.gitDirectory).appendingPathComponent("hooks/pre-commit")
        try fileManager.createDirectory(at: hook.deletingLastPathComponent(), withIntermediateDirectories: true)
        let binary = (try? fileManager.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "tide"
        let script = ExampleConfigRepo.preCommitHook.replacingOccurrences(
            of: "TIDE=\"${TIDE:-tide}\"", with: "TIDE=\"${TIDE:-\(binary)}\"")
        try Data(script.utf8).write(to: hook)
        try fileManager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hook.path)

        print("Created config repo \(root) on branch \(branch) at \(commit.short) with the pre-commit hook installed.")
        print("Next:")
        print("  cd \(directory)")
        print("  tide plan          # what would change")
        print("  tide reconcile     # deploy it (the demo executor writes deployments/)")
        print("  tide status")
    }
}
