internal import CLibgit2
import Foundation

extension Repository {
    /// The outcome of `commitFile`.
    public struct FileCommit: Sendable {
        public var commit: ObjectID
        /// The work tree was brought along (it had the branch checked out and the file unmodified); false when it
        /// was left as it was, and `git status` will show the difference.
        public var workTreeUpdated: Bool

        public init(commit: ObjectID, workTreeUpdated: Bool) {
            self.commit = commit
            self.workTreeUpdated = workTreeUpdated
        }
    }

    /// Commits `contents` as `path` on `branch`, on top of `parent` (which must still be the branch's head: the
    /// ref is moved with a compare-and-swap, so a concurrent push fails this instead of being overwritten).
    /// Works without a checkout, on bare repositories too. When the branch is checked out in a work tree whose
    /// copy of the file (and index entry) still matches the parent, they are updated to the new content.
    public func commitFile(
        path: String, contents: [UInt8], branch: String, parent: ObjectID, message: String
    ) throws -> FileCommit {
        let commit = try makeFileCommit(path: path, contents: contents, parent: parent, message: message)
        let synced = try advance(branch: branch, from: parent, to: commit, reason: String(message.prefix(60)))
        return FileCommit(commit: commit, workTreeUpdated: synced)
    }

    /// A commit of `contents` as `path` on top of `parent`, on no branch yet (`advance(branch:from:to:)` puts it
    /// there), so a caller can read the desired state it makes before deciding to publish it.
    public func makeFileCommit(path: String, contents: [UInt8], parent: ObjectID, message: String) throws -> ObjectID {
        let signer = self.signer
        return try withHandle { repo in
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

            try path.withCString { cPath in
                var entry = git_index_entry()
                if let existing = git_index_get_bypath(index, cPath, 0) {
                    entry = existing.pointee
                } else {
                    entry.mode = GIT_FILEMODE_BLOB.rawValue
                }
                entry.id = blobOID
                entry.path = cPath
                try check(git_index_add(index, &entry), "stage \(path)")
            }
            var treeOID = git_oid()
            try check(git_index_write_tree_to(&treeOID, index, repo), "write tree")
            return try Self.createCommit(
                repo: repo, tree: treeOID, parent: parentCommit, message: message, signer: signer)
        }
    }

    /// Moves `branch` from `parent` to `commit` with a compare-and-swap (a branch that moved on fails this, and
    /// nothing is overwritten), then brings a checked-out work tree and index along, file by file, where they
    /// still hold the parent's content. Returns whether the work tree was brought along.
    public func advance(branch: String, from parent: ObjectID, to commit: ObjectID, reason: String) throws -> Bool {
        try withHandle { repo in
            try Self.moveBranch(repo: repo, branch: branch, from: parent, to: commit, reason: reason)
            var synced = true
            for change in try Self.diff(repo: repo, from: parent, to: commit) {
                let updated = try Self.syncWorkTree(
                    repo: repo, branch: branch, path: change.path, oldBlob: change.old, newBlob: change.new,
                    contents: change.contents)
                synced = synced && updated
            }
            return synced
        }
    }

    /// Writes a commit of `tree` on `parent`; with `signer`, signed (the `gpgsig` header git writes).
    private static func createCommit(
        repo: OpaquePointer, tree treeOID: git_oid, parent: OpaquePointer?, message: String, signer: CommitSigner?
    ) throws -> ObjectID {
        var treeOID = treeOID
        var tree: OpaquePointer?
        try check(git_tree_lookup(&tree, repo, &treeOID), "read new tree")
        defer { git_tree_free(tree) }
        var signature: UnsafeMutablePointer<git_signature>?
        if git_signature_default(&signature, repo) < 0 {
            try check(git_signature_now(&signature, "Tide", "tide@localhost"), "make commit signature")
        }
        defer { git_signature_free(signature) }
        var commitOID = git_oid()
        var parents: [OpaquePointer?] = [parent]
        guard let signer else {
            let created = parents.withUnsafeMutableBufferPointer { buffer in
                git_commit_create(
                    &commitOID, repo, nil, signature, signature, nil, message, tree, buffer.count, buffer.baseAddress)
            }
            try check(created, "create commit")
            return ObjectID(commitOID)
        }
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        let made = parents.withUnsafeMutableBufferPointer { list in
            git_commit_create_buffer(
                &buffer, repo, signature, signature, nil, message, tree, list.count, list.baseAddress)
        }
        try check(made, "create commit")
        let content = Array(UnsafeRawBufferPointer(start: buffer.ptr, count: buffer.size))
        let armored: String
        do {
            armored = try signer.sign(content)
        } catch {
            throw GitError(code: -1, operation: "sign commit", message: "\(error)")
        }
        let text = String(decoding: content, as: UTF8.self)
        try check(git_commit_create_with_signature(&commitOID, repo, text, armored, "gpgsig"), "create signed commit")
        return ObjectID(commitOID)
    }

    /// The outcome of `revert`.
    public struct RevertResult: Sendable {
        /// One revert commit per reverted commit that still changed something, oldest first; the last is the
        /// branch's new head. Empty when every commit was already undone on the branch (nothing was written).
        public var commits: [ObjectID]
        /// The reverted commits that were already undone on the branch, so no commit was written for them.
        public var alreadyReverted: [ObjectID] = []
        public var workTreeUpdated: Bool
    }

    /// `git revert` of `commits` (newest first, as a log lists them) on top of `parent`, the branch's head: one
    /// commit each, with git's "This reverts commit …" line (and `note` after it), and the branch moved with a
    /// compare-and-swap. A commit whose revert changes nothing (it was already undone) gets no commit. Fails
    /// without writing anything when a revert does not apply cleanly.
    public func revert(
        _ commits: [ObjectID], branch: String, parent: ObjectID, note: String? = nil
    ) throws -> RevertResult {
        var result = RevertResult(commits: [], workTreeUpdated: false)
        var head = parent
        for id in commits {
            let summary = try commit(id).summary
            let message =
                "Revert \"\(summary)\"\n\nThis reverts commit \(id.hex).\n" + (note.map { "\n\($0)\n" } ?? "")
            guard let written = try makeRevertCommit([id], parent: head, message: message) else {
                result.alreadyReverted.append(id)
                continue
            }
            head = written
            result.commits.append(written)
        }
        guard head != parent else { return result }
        result.workTreeUpdated = try advance(branch: branch, from: parent, to: head, reason: "revert")
        return result
    }

    /// One commit on top of `parent` that reverts `commits` (newest first) together, on no branch yet; nil when
    /// reverting them changes nothing. Throws when a revert does not apply cleanly.
    public func makeRevertCommit(_ commits: [ObjectID], parent: ObjectID, message: String) throws -> ObjectID? {
        let signer = self.signer
        return try withHandle { repo in
            var options = git_merge_options()
            try check(git_merge_options_init(&options, UInt32(GIT_MERGE_OPTIONS_VERSION)), "initialise merge options")
            var parentOID = parent.oid
            var parentCommit: OpaquePointer?
            try check(git_commit_lookup(&parentCommit, repo, &parentOID), "read commit \(parent.short)")
            defer { git_commit_free(parentCommit) }
            // Reverting several commits needs a commit to revert each onto: intermediate commits are written
            // (unreferenced, so git's gc drops them); the result is one commit on `parent`.
            var ours = parent
            var tree = git_commit_tree_id(parentCommit).pointee
            for id in commits {
                var revertOID = id.oid
                var reverted: OpaquePointer?
                try check(git_commit_lookup(&reverted, repo, &revertOID), "read commit \(id.short)")
                defer { git_commit_free(reverted) }
                var oursOID = ours.oid
                var oursCommit: OpaquePointer?
                try check(git_commit_lookup(&oursCommit, repo, &oursOID), "read commit \(ours.short)")
                defer { git_commit_free(oursCommit) }
                var index: OpaquePointer?
                try check(git_revert_commit(&index, repo, reverted, oursCommit, 0, &options), "revert \(id.short)")
                defer { git_index_free(index) }
                if git_index_has_conflicts(index) != 0 {
                    throw GitError(
                        code: -13, operation: "revert \(id.short)",
                        message:
                            "it does not apply cleanly on \(parent.short) (a later commit changed the same lines); "
                            + "nothing was written — revert by hand")
                }
                try check(git_index_write_tree_to(&tree, index, repo), "write tree")
                if id != commits.last {
                    ours = try Self.createCommit(
                        repo: repo, tree: tree, parent: oursCommit, message: message, signer: signer)
                }
            }
            var parentTree = git_commit_tree_id(parentCommit).pointee
            if git_oid_equal(&tree, &parentTree) == 1 { return nil }
            return try Self.createCommit(
                repo: repo, tree: tree, parent: parentCommit, message: message, signer: signer)
        }
    }

    /// Moves `refs/heads/BRANCH` from `old` to `new`, failing if it no longer points at `old`.
    private static func moveBranch(
        repo: OpaquePointer, branch: String, from old: ObjectID, to new: ObjectID, reason: String
    ) throws {
        var oldOID = old.oid
        var newOID = new.oid
        var ref: OpaquePointer?
        let moved = git_reference_create_matching(
            &ref, repo, "refs/heads/\(branch)", &newOID, 1, &oldOID, "tide: \(reason)")
        if moved == GIT_EMODIFIED.rawValue || moved == GIT_EEXISTS.rawValue {
            throw GitError(
                code: moved, operation: "move \(branch) to \(new.short)",
                message: "\(branch) moved on since \(old.short); nothing was written — try again")
        }
        try check(moved, "move \(branch) to \(new.short)")
        git_reference_free(ref)
    }

    private struct BlobChange {
        var path: String
        var old: git_oid?
        var new: git_oid
        var contents: [UInt8]
    }

    /// Modified files between two commits, with their new content (added and deleted files are left to git).
    private static func diff(repo: OpaquePointer, from old: ObjectID, to new: ObjectID) throws -> [BlobChange] {
        var oldOID = old.oid
        var newOID = new.oid
        var oldCommit: OpaquePointer?
        var newCommit: OpaquePointer?
        try check(git_commit_lookup(&oldCommit, repo, &oldOID), "read commit \(old.short)")
        defer { git_commit_free(oldCommit) }
        try check(git_commit_lookup(&newCommit, repo, &newOID), "read commit \(new.short)")
        defer { git_commit_free(newCommit) }
        var oldTree: OpaquePointer?
        var newTree: OpaquePointer?
        try check(git_commit_tree(&oldTree, oldCommit), "read tree")
        defer { git_tree_free(oldTree) }
        try check(git_commit_tree(&newTree, newCommit), "read tree")
        defer { git_tree_free(newTree) }
        var diff: OpaquePointer?
        try check(git_diff_tree_to_tree(&diff, repo, oldTree, newTree, nil), "diff")
        defer { git_diff_free(diff) }
        var changes: [BlobChange] = []
        for index in 0..<git_diff_num_deltas(diff) {
            guard let delta = git_diff_get_delta(diff, index)?.pointee, delta.status == GIT_DELTA_MODIFIED,
                let path = delta.new_file.path.map({ String(cString: $0) })
            else { continue }
            var blob: OpaquePointer?
            var id = delta.new_file.id
            try check(git_blob_lookup(&blob, repo, &id), "read blob of \(path)")
            defer { git_blob_free(blob) }
            let size = Int(git_blob_rawsize(blob))
            let bytes = size > 0 ? Array(UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: size)) : []
            changes.append(BlobChange(path: path, old: delta.old_file.id, new: delta.new_file.id, contents: bytes))
        }
        return changes
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
