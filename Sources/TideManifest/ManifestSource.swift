public import TideGit

/// Where manifests come from: a commit's tree or the index, always read through libgit2, never a checkout.
public protocol ManifestSource: Sendable {
    /// Every file under the manifest root (manifests are the `.yaml` / `.yml` ones).
    func files() throws -> [TreeFile]
    func contents(of blob: ObjectID) throws -> [UInt8]
    /// The commit read from, if any.
    var revision: ObjectID? { get }
    /// The manifest root, relative to the repository root ("" for the root itself).
    var root: String { get }
}

/// The manifests in one commit's tree.
public struct GitCommitSource: ManifestSource {
    public let repository: Repository
    public let commit: ObjectID
    public let root: String

    public init(repository: Repository, commit: ObjectID, root: String) {
        self.repository = repository
        self.commit = commit
        self.root = root
    }

    public var revision: ObjectID? { commit }

    public func files() throws -> [TreeFile] {
        try repository.files(at: commit, under: root)
    }

    public func contents(of blob: ObjectID) throws -> [UInt8] {
        try repository.blob(blob)
    }
}

/// The manifests staged in the index: what the next commit would hold (the pre-commit hook validates these).
public struct GitIndexSource: ManifestSource {
    public let repository: Repository
    public let root: String
    /// Another index than the repository's own (`$GIT_INDEX_FILE` in a hook).
    public let indexFile: String?

    public init(repository: Repository, root: String, indexFile: String? = nil) {
        self.repository = repository
        self.root = root
        self.indexFile = indexFile
    }

    public var revision: ObjectID? { nil }

    public func files() throws -> [TreeFile] {
        try repository.stagedFiles(under: root, indexFile: indexFile)
    }

    public func contents(of blob: ObjectID) throws -> [UInt8] {
        try repository.blob(blob)
    }
}
