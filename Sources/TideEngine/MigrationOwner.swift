import TideState

/// The install a migration history row belongs to: one config repo, branch and manifest root, driven from one
/// state. Another install on the same database (another repo, branch, `--path` or state file) sees the rows as
/// not its own and never undoes or contracts them.
public struct MigrationOwner: Sendable, Hashable {
    public var repository: String
    public var branch: String
    public var path: String
    public var state: String

    public init(repository: String, branch: String, path: String, state: String) {
        self.repository = repository
        self.branch = branch
        self.path = path
        self.state = state
    }

    /// Identifies the install (without the environment).
    public var id: String {
        "repo=\(repository) branch=\(branch) path=\(path.isEmpty ? "/" : path) state=\(state)"
    }

    /// What a history row holds: the install, and the environment the phase ran for.
    public func record(environment: String) -> String { id + " env=\(environment)" }

    /// Whether a row's owner is this install (in any environment sharing the database).
    public func owns(_ recorded: String) -> Bool {
        recorded == id || recorded.hasPrefix(id + " env=")
    }
}
