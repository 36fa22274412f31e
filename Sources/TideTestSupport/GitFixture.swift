public import Foundation
public import TideGit

/// A real git repository in a temp directory, driven with the `git` command line the way a user would.
public final class GitFixture: Sendable {
    public let directory: TemporaryDirectory
    public let bare: Bool
    /// The work tree (for a bare fixture: a scratch clone that pushes to it).
    public let workTree: String
    /// What `--repo` should name.
    public let repoPath: String

    public static let gitPath: String = {
        for candidate in ["/usr/bin/git", "/usr/local/bin/git", "/bin/git"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "/usr/bin/git"
    }()

    /// A repository on `main`. With `bare`, commits are made in a clone and pushed to a bare repository.
    public init(bare: Bool = false) throws {
        directory = try TemporaryDirectory("tide-git")
        self.bare = bare
        workTree = directory.appending("work")
        repoPath = bare ? directory.appending("config.git") : workTree
        if bare {
            try Self.git(["init", "-q", "--bare", "-b", "main", repoPath], in: directory.path)
            try Self.git(["clone", "-q", repoPath, workTree], in: directory.path)
            try Self.git(["checkout", "-q", "-b", "main"], in: workTree)
        } else {
            try Self.git(["init", "-q", "-b", "main", workTree], in: directory.path)
        }
        try git("config", "user.name", "Test Author")
        try git("config", "user.email", "author@example.com")
        try git("config", "commit.gpgsign", "false")
    }

    @discardableResult
    static func git(_ arguments: [String], in directory: String, date: Date? = nil) throws -> String {
        var environment = ["GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"]
        if let date {
            let stamp = "@\(Int(date.timeIntervalSince1970)) +0000"
            environment["GIT_AUTHOR_DATE"] = stamp
            environment["GIT_COMMITTER_DATE"] = stamp
        }
        let result = try runProcess(gitPath, arguments, in: directory, environment: environment)
        guard result.status == 0 else {
            throw FixtureError(
                "git \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.standardError)")
        }
        return result.standardOutput
    }

    /// Runs git in the work tree.
    @discardableResult
    public func git(_ arguments: String...) throws -> String {
        try Self.git(arguments, in: workTree)
    }

    /// Writes a file in the work tree (creating directories).
    public func write(_ path: String, _ contents: String, executable: Bool = false) throws {
        let url = URL(fileURLWithPath: workTree).appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: url)
        if executable {
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        }
    }

    public func remove(_ path: String) throws {
        try git("rm", "-q", "-r", path)
    }

    /// Stages everything and commits (at `date`, if given); returns the new commit id. Bare fixtures push to the
    /// bare repository.
    @discardableResult
    public func commit(_ message: String, files: [String: String] = [:], date: Date? = nil) throws -> ObjectID {
        for (path, contents) in files { try write(path, contents) }
        try git("add", "-A")
        try Self.git(["commit", "-q", "--no-verify", "-m", message], in: workTree, date: date)
        return try publish()
    }

    /// `git revert --no-edit REV` (at `date`, if given); returns the revert commit.
    @discardableResult
    public func revert(_ revision: ObjectID, date: Date? = nil) throws -> ObjectID {
        try Self.git(["revert", "--no-edit", revision.hex], in: workTree, date: date)
        return try publish()
    }

    public func head() throws -> ObjectID {
        let text = try git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        guard let id = ObjectID(hex: text) else { throw FixtureError("bad rev-parse output: \(text)") }
        return id
    }

    private func publish() throws -> ObjectID {
        if bare { try git("push", "-q", "origin", "main") }
        return try head()
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
