import ArgumentParser
import Foundation
import TideGit

/// `tide init DIR [--template NAME]`: a new config repo with a template's files (default: the demo), committed,
/// with the pre-commit hook installed.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a config repo from a template, with a first commit and the pre-commit hook.",
        discussion: "Templates:\n"
            + ExampleConfigRepo.Template.allCases.map { "  \($0.rawValue): \($0.summary)" }.joined(separator: "\n")
            + "\n\nThe hook finds tide through $TIDE, else PATH, and refuses the commit when it cannot.")

    @Argument(help: "The directory to create (must not exist, or be empty).")
    var directory: String

    @Option(name: .long, help: "The branch of the first commit.")
    var branch: String = "main"

    @Option(name: .long, help: "The template to start from (see the list below).")
    var template: ExampleConfigRepo.Template = .demo

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
        let files = template.files
        for file in files {
            let url = URL(fileURLWithPath: root).appendingPathComponent(file.path)
            try fileManager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(file.contents.utf8).write(to: url)
            if file.executable {
                try fileManager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
            }
        }
        let commit = try repository.commitWorkingFiles(
            files.map(\.path),
            message: "Initial Tide config repo\n\nCreated by `tide init --template \(template.rawValue)`.\n")

        let hook = URL(fileURLWithPath: repository.gitDirectory).appendingPathComponent("hooks/pre-commit")
        try fileManager.createDirectory(at: hook.deletingLastPathComponent(), withIntermediateDirectories: true)
        // Written as it is, with no path baked in: the hook finds tide through $TIDE or PATH when it runs, so the
        // repo keeps working when the build that made it moves or goes.
        try Data(ExampleConfigRepo.preCommitHook.utf8).write(to: hook)
        try fileManager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hook.path)

        print(
            "Created config repo \(root) from the \(template.rawValue) template on branch \(branch) at \(commit.short)"
                + " with the pre-commit hook installed (it runs $TIDE, else tide from PATH).")
        print("Next:")
        print("  cd \(directory)")
        for line in template.nextSteps { print("  \(line)") }
    }
}

extension ExampleConfigRepo.Template: ExpressibleByArgument {
    /// What to do after `tide init`, for this template.
    var nextSteps: [String] {
        switch self {
        case .demo:
            [
                "tide plan          # what would change",
                "tide reconcile     # deploy it (the demo executor writes deployments/)",
                "tide status",
            ]
        case .empty:
            ["add a Service under services/ (executor: deploy, environments: {prod: {}}), commit, then tide reconcile"]
        case .nginxCanary:
            ["see examples/nginx-canary/README.md in Tide's repository: nginx and the backends must run first"]
        case .pipeline:
            [
                "tide reconcile     # dev deploys; staging waits for the 1h bake, prod for tide approve",
                "tide status",
            ]
        }
    }
}
