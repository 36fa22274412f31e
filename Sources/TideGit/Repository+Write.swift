internal import CLibgit2
import Foundation

extension Repository {
    /// The outcome of `commitFile`.
    public struct FileCommit: Sendable {
        public var commit: ObjectID
        /// The work tree was brought along (it had the branch checked out and the file unmodified); false when it
        /// was left as it was, and `git status` will show the difference.
        public var workTreeUpdated: Bool
    }

    /// Commits `contents` as `path` on `branch`, on top of `parent` (which must still be the branch's head: the
    /// ref is moved with a compare-and-swap, so a concurrent push fails this instead of being overwritten).
    /// Works without a checkout, on bare repositories too. When the branch is checked out in a work tree whose
    /// copy of the file (and index entry) still matches the parent, they are updated to the new content.
    public func commitFile(
        path: String, contents: [UInt8], branch: String, parent: ObjectID, message: String
    ) throws -> FileCommit {
        try withHandle { repo in
            var parentOID = parent.oid
            var parentCommit: OpaquePointer?
            try check(git_commit_lookup(&parentCommit, repo, &parentOID), "read commit \(parent.short)")
            defer { git_commit_free(parentCommit) }
            var parentTree: OpaquePointer?
            try check(git_commit_tree(&parentTree, parentCommit), "read tree of \(parent.short)")
            defer { git_tree_free(parentTree) }

            var index: OpaquePointer?
            try check(git_index_new(&index), "make an in-memory index")
            defer { git_index_free(index) }
            try check(git_index_read_tree(index, parentTree), "read tree of \(parent.short) into an index")

            var blobOID = git_oid()
            let rc = contents.withUnsafeBytes { raw in
                git_blob_create_from_buffer(&blobOID, repo, raw.baseAddress, raw.count)
            }
            try check(rc, "write blob for \(path)")

            var oldBlob: git_oid?
            try path.withCString { cPath in
                var entry = git_index_entry()
                if let existing = git_index_get_bypath(index, cPath, 0) {
                    entry = existing.pointee
                    oldBlob = existing.pointee.id
                } else {
                    entry.mode = GIT_FILEMODE_BLOB.rawValue
                }
                entry.id = blobOID
                entry.path = cPath
                try check(git_index_add(index, &entry), "stage \(path)")
            }
            var treeOID = git_oid()
            try check(git_index_write_tree_to(&treeOID, index, repo), "write tree")
            var tree: OpaquePointer?
            try check(git_tree_lookup(&tree, repo, &treeOID), "read new tree")
            defer { git_tree_free(tree) }

            var signature: UnsafeMutablePointer<git_signature>?
            if git_signature_default(&signature, repo) < 0 {
                try check(git_signature_now(&signature, "Tide", "tide@localhost"), "make commit signature")
            }
            defer { git_signature_free(signature) }

            var commitOID = git_oid()
            var parents: [OpaquePointer?] = [parentCommit]
            let created = parents.withUnsafeMutableBufferPointer { buffer in
                git_commit_create(
                    &commitOID, repo, nil, signature, signature, nil, message, tree, buffer.count, buffer.baseAddress)
            }
            try check(created, "create commit")

            var ref: OpaquePointer?
            let moved = git_reference_create_matching(
                &ref, repo, "refs/heads/\(branch)", &commitOID, 1, &parentOID, "tide: \(message.prefix(60))")
            if moved == GIT_EMODIFIED.rawValue || moved == GIT_EEXISTS.rawValue {
                throw GitError(
                    code: moved, operation: "move \(branch) to \(ObjectID(commitOID).short)",
                    message: "\(branch) moved on since \(parent.short); nothing was written — try again")
            }
            try check(moved, "move \(branch) to \(ObjectID(commitOID).short)")
            git_reference_free(ref)

            let synced = try Self.syncWorkTree(
                repo: repo, branch: branch, path: path, oldBlob: oldBlob, newBlob: blobOID, contents: contents)
            return FileCommit(commit: ObjectID(commitOID), workTreeUpdated: synced)
        }
    }

    /// Brings a checked-out work tree and its index along with a commit made behind their back, for one file —
    /// only when both still hold the parent's version of it, so nobody's local edits are overwritten.
    private static func syncWorkTree(
        repo: OpaquePointer, branch: String, path: String, oldBlob: git_oid?, newBlob: git_oid, contents: [UInt8]
    ) throws -> Bool {
        guard let workdir = git_repository_workdir(repo) else { return false }
        var head: OpaquePointer?
        guard git_reference_lookup(&head, repo, "HEAD") == 0 else { return false }
        defer { git_reference_free(head) }
        guard git_reference_type(head) == GIT_REFERENCE_SYMBOLIC,
            let target = git_reference_symbolic_target(head), String(cString: target) == "refs/heads/\(branch)"
        else { return false }

        let file = URL(fileURLWithPath: String(cString: workdir)).appendingPathComponent(path)
        var index: OpaquePointer?
        try check(git_repository_index(&index, repo), "open the index")
        defer { git_index_free(index) }
        return try path.withCString { cPath in
            let staged = git_index_get_bypath(index, cPath, 0)
            guard var entry = staged?.pointee else { return false }
            var stagedID = entry.id
            guard var old = oldBlob, git_oid_equal(&stagedID, &old) == 1 else { return false }
            // The work tree copy must be the parent's too: hash it as git would.
            guard let onDisk = try? Data(contentsOf: file) else { return false }
            var diskID = git_oid()
            let hashed = onDisk.withUnsafeBytes { raw in
                git_odb_hash(&diskID, raw.baseAddress, raw.count, GIT_OBJECT_BLOB)
            }
            guard hashed == 0, git_oid_equal(&diskID, &old) == 1 else { return false }
            try Data(contents).write(to: file, options: .atomic)
            entry.id = newBlob
            entry.path = cPath
            entry.file_size = UInt32(truncatingIfNeeded: contents.count)
            try check(git_index_add(index, &entry), "update the index for \(path)")
            try check(git_index_write(index), "write the index")
            return true
        }
    }
}
