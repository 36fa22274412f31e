import TideState

/// The install a migration history row belongs to: one config repo (known by its first commit, so a clone or a
/// moved checkout is the same repo), branch and manifest root, driven from one state (known by the id made when
/// it was created, so a moved state file is the same state). Another install on the same database — another
/// repo, branch, `--path` or state — sees the rows as not its own and never undoes or contracts them.
public struct MigrationOwner: Sendable, Hashable {
    /// The tracked branch's root commit.
    public var repository: String
    public var branch: String
    public var path: String
    /// The state's install id.
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
