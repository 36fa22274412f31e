public import Foundation

/// A person and a moment, as git records them on a commit.
public struct Signature: Sendable, Hashable, Codable {
    public var name: String
    public var email: String
    public var time: Date

    public init(name: String, email: String, time: Date) {
        self.name = name
        self.email = email
        self.time = time
    }
}

/// Metadata of one commit, read without a checkout.
public struct Commit: Sendable, Hashable, Codable {
    public var id: ObjectID
    public var tree: ObjectID
    public var parents: [ObjectID]
    public var author: Signature
    public var committer: Signature
    public var message: String

    /// The first line of the message.
    public var summary: String {
        String(message.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }

    /// The commit this one reverts, when its message carries git's "This reverts commit <id>." line.
    public var revertedCommit: ObjectID? {
        guard let range = message.range(of: "This reverts commit ") else { return nil }
        let hex = message[range.upperBound...].prefix(40)
        return ObjectID(hex: String(hex))
    }
}

/// One file in a tree or the index.
public struct TreeFile: Sendable, Hashable {
    /// Path relative to the repository root, with `/` separators.
    public var path: String
    public var blob: ObjectID
    public var isExecutable: Bool
    /// A symbolic link (mode 120000): its blob is the link's target text, never a manifest.
    public var isSymlink: Bool
    /// A submodule (a gitlink, mode 160000): `blob` is a commit of another repository, which is not here.
    public var isSubmodule: Bool

    public init(path: String, blob: ObjectID, isExecutable: Bool, isSymlink: Bool = false, isSubmodule: Bool = false) {
        self.path = path
        self.blob = blob
        self.isExecutable = isExecutable
        self.isSymlink = isSymlink
        self.isSubmodule = isSubmodule
    }
}

/// One path that differs between two trees.
public struct ChangedPath: Sendable, Hashable {
    public enum Status: String, Sendable {
        case added, deleted, modified, renamed, typeChanged
    }

    public var status: Status
    public var oldPath: String
    public var newPath: String
}
