internal import CLibgit2
import Foundation

/// A git repository opened through libgit2.
///
/// libgit2 objects must not be used from two threads at once, and its error text lives on the thread that
/// failed. Every call therefore goes through `withHandle`, which holds a lock for the duration of the C call and
/// of reading its error, so one `Repository` can be shared between tasks safely.
public final class Repository: @unchecked Sendable {
    // Guarded by `lock`; never escapes `withHandle`.
    private let pointer: OpaquePointer
    private let lock = NSLock()
    private var commitSigner: CommitSigner?

    /// The `.git` directory (or the repository itself, when bare), with a trailing slash removed.
    public let gitDirectory: String
    /// The work tree, or nil for a bare repository.
    public let workingDirectory: String?

    public var isBare: Bool { workingDirectory == nil }

    /// Signs every commit this repository writes (nil: commits are unsigned). Read it outside `withHandle`.
    public var signer: CommitSigner? {
        get { lock.withLock { commitSigner } }
        set { lock.withLock { commitSigner = newValue } }
    }

    /// The loose objects checked before history is read (see `LooseObjectCheck`).
    private let looseObjects: LooseObjectCheck

    init(pointer: OpaquePointer) {
        self.pointer = pointer
        looseObjects = LooseObjectCheck(
            objects: Self.trimSlash(String(cString: git_repository_commondir(pointer))) + "/objects")
        self.gitDirectory = Self.trimSlash(String(cString: git_repository_path(pointer)))
        self.workingDirectory = git_repository_workdir(pointer).map { Self.trimSlash(String(cString: $0)) }
    }

    deinit {
        git_repository_free(pointer)
    }

    private static func trimSlash(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// Opens the repository at `path` (a work tree, a `.git` directory or a bare repository), searching parent
    /// directories the way `git` does.
    public static func open(at path: String) throws -> Repository {
        _ = libgit2Initialized
        var repo: OpaquePointer?
        try check(git_repository_open_ext(&repo, path, 0, nil), "open repository \(path)")
        guard let repo else { throw GitError(code: -1, operation: "open repository \(path)", message: "no handle") }
        return Repository(pointer: repo)
    }

    /// Creates a new repository with a work tree at `path`, whose HEAD names `initialBranch`.
    public static func create(at path: String, initialBranch: String = "main") throws -> Repository {
        _ = libgit2Initialized
        var options = git_repository_init_options()
        try check(
            git_repository_init_options_init(&options, UInt32(GIT_REPOSITORY_INIT_OPTIONS_VERSION)),
            "initialise repository options")
        options.flags = GIT_REPOSITORY_INIT_MKPATH.rawValue | GIT_REPOSITORY_INIT_NO_REINIT.rawValue
        var repo: OpaquePointer?
        let rc = initialBranch.withCString { branch in
            options.initial_head = branch
            return git_repository_init_ext(&repo, path, &options)
        }
        try check(rc, "create repository \(path)")
        guard let repo else { throw GitError(code: -1, operation: "create repository \(path)", message: "no handle") }
        return Repository(pointer: repo)
    }

    func withHandle<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(pointer)
    }

    // MARK: - References

    /// The branch HEAD points to (for example `main`), also when that branch has no commit yet.
    public func headBranch() throws -> String? {
        try withHandle { repo throws in
            var ref: OpaquePointer?
            try check(git_reference_lookup(&ref, repo, "HEAD"), "read HEAD")
            defer { git_reference_free(ref) }
            guard git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC, let target = git_reference_symbolic_target(ref)
            else { return nil }
            let name = String(cString: target)
            return name.hasPrefix("refs/heads/") ? String(name.dropFirst("refs/heads/".count)) : name
        }
    }

    /// Resolves a branch name (or, failing that, any revision git understands) to a commit id.
    /// With `branch` nil, the branch HEAD points to.
    public func resolveCommit(branch: String?) throws -> ObjectID {
        let name = try branch ?? headBranch() ?? "HEAD"
        return try withHandle { repo throws in
            // A branch resolves through its reference alone: the commit object is not read here (a corrupt one is
            // read first by `tide git-check`, in a child).
            var direct = git_oid()
            if git_reference_name_to_id(&direct, repo, "refs/heads/\(name)") == 0 { return ObjectID(direct) }
            var object: OpaquePointer?
            var rc = git_revparse_single(&object, repo, "refs/heads/\(name)")
            if rc == GIT_ENOTFOUND.rawValue {
                rc = git_revparse_single(&object, repo, name)
            }
            try check(rc, "resolve branch '\(name)'")
            defer { git_object_free(object) }
            var commit: OpaquePointer?
            try check(git_object_peel(&commit, object, GIT_OBJECT_COMMIT), "resolve '\(name)' to a commit")
            defer { git_object_free(commit) }
            return ObjectID(git_object_id(commit))
        }
    }

    // MARK: - Commits

    /// Reads one commit's metadata.
    public func commit(_ id: ObjectID) throws -> Commit {
        try withHandle { repo throws in
            var commit: OpaquePointer?
            var oid = id.oid
            try check(git_commit_lookup(&commit, repo, &oid), "read commit \(id.short)")
            defer { git_commit_free(commit) }
            return Self.describe(commit: commit!)
        }
    }

    private static func describe(commit: OpaquePointer) -> Commit {
        var parents: [ObjectID] = []
        for index in 0..<git_commit_parentcount(commit) {
            if let parent = git_commit_parent_id(commit, index) { parents.append(ObjectID(parent)) }
        }
        return Commit(
            id: ObjectID(git_commit_id(commit)),
            tree: ObjectID(git_commit_tree_id(commit)),
            parents: parents,
            author: signature(git_commit_author(commit)),
            committer: signature(git_commit_committer(commit)),
            message: git_commit_message(commit).map { String(cString: $0) } ?? "")
    }

    private static func signature(_ pointer: UnsafePointer<git_signature>?) -> Signature {
        guard let sig = pointer?.pointee else {
            return Signature(name: "", email: "", time: Date(timeIntervalSince1970: 0))
        }
        return Signature(
            name: sig.name.map { String(cString: $0) } ?? "",
            email: sig.email.map { String(cString: $0) } ?? "",
            time: Date(timeIntervalSince1970: TimeInterval(sig.when.time)))
    }

    /// Commits reachable from `head` and not from `base`, newest first, that change anything under one of
    /// `paths` compared with their first parent. An empty `paths` keeps every commit.
    ///
    /// History that is not all there is walked as far as it goes: in a shallow clone the walk stops at the
    /// boundary, and a `base` that is gone (history rewritten and garbage-collected) gives no commits at all —
    /// nothing can be said to be new since a commit that no longer exists. `isShallow` and `contains` tell callers
    /// which happened.
    public func commits(
        from head: ObjectID, excluding base: ObjectID? = nil, touching paths: [String] = [], limit: Int = .max
    ) throws -> [Commit] {
        if let base, !contains(base) { return [] }
        return try withHandle { repo throws in
            var walk: OpaquePointer?
            try check(git_revwalk_new(&walk, repo), "start revision walk")
            defer { git_revwalk_free(walk) }
            git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue)
            var headOID = head.oid
            try check(git_revwalk_push(walk, &headOID), "walk from \(head.short)")
            // Hiding `base` makes libgit2 walk its ancestry too, which in a shallow clone runs past the boundary
            // and ends the walk before it starts: there, the walk goes down from `head` until it meets `base`.
            let shallow = git_repository_is_shallow(repo) == 1
            if let base, !shallow {
                var baseOID = base.oid
                try check(git_revwalk_hide(walk, &baseOID), "hide \(base.short) from walk")
            }
            var result: [Commit] = []
            var oid = git_oid()
            while result.count < limit {
                let rc = git_revwalk_next(&oid, walk)
                if shallow, rc == 0, let base, ObjectID(oid) == base { break }
                if rc == GIT_ITEROVER.rawValue { break }
                // A parent that is not in the repository: the boundary of a shallow clone.
                if rc == GIT_ENOTFOUND.rawValue { break }
                try check(rc, "walk history from \(head.short)")
                var commit: OpaquePointer?
                try check(git_commit_lookup(&commit, repo, &oid), "read commit \(ObjectID(oid).short)")
                defer { git_commit_free(commit) }
                let kept: Bool
                do {
                    kept = try paths.isEmpty || Self.touches(commit: commit!, paths: paths, repo: repo)
                } catch let error as GitError where error.code == GIT_ENOTFOUND.rawValue {
                    break  // its parent is beyond the shallow boundary: what it changed cannot be told
                }
                if kept { result.append(Self.describe(commit: commit!)) }
            }
            return result
        }
    }

    /// How many commits of a shallow clone `isAncestor` walks at the most.
    static let longestShallowWalk = 100_000

    /// Whether `descendant` is `ancestor` or has it in its history (a branch that moved forward, not rewritten).
    public func isAncestor(_ ancestor: ObjectID, of descendant: ObjectID) throws -> Bool {
        guard ancestor != descendant else { return true }
        return try withHandle { repo throws in
            var commit = descendant.oid
            var base = ancestor.oid
            let rc = git_graph_descendant_of(repo, &commit, &base)
            if rc == 1 { return true }
            if git_repository_is_shallow(repo) != 1 {
                if rc < 0 { try check(rc, "walk the history of \(descendant.short)") }
                return false
            }
            // A shallow clone's history ends at its boundary, where libgit2's merge-base and revwalk give up
            // (a parent is missing): walk the parents by hand, as far as they are there.
            var queue = [descendant]
            var seen: Set<ObjectID> = [descendant]
            while let id = queue.popLast(), seen.count <= Self.longestShallowWalk {
                var oid = id.oid
                var object: OpaquePointer?
                guard git_commit_lookup(&object, repo, &oid) == 0 else { continue }
                defer { git_commit_free(object) }
                for index in 0..<git_commit_parentcount(object) {
                    guard let parent = git_commit_parent_id(object, index).map({ ObjectID($0.pointee) }) else {
                        continue
                    }
                    if parent == ancestor { return true }
                    if seen.insert(parent).inserted { queue.append(parent) }
                }
            }
            return false
        }
    }

    /// Throws when a loose object is damaged (libgit2 would loop for ever reading it): called before history is
    /// walked in this process. Each file is inflated once while it stays the same.
    public func verifyLooseObjects() throws {
        try looseObjects.verify()
    }

    /// Whether `path` is a directory of `commit`'s tree (nil: the commit or its tree cannot be read).
    public func isDirectory(_ path: String, at commit: ObjectID) -> Bool? {
        try? withHandle { repo throws in
            var object: OpaquePointer?
            var oid = commit.oid
            try check(git_commit_lookup(&object, repo, &oid), "read commit \(commit.short)")
            defer { git_commit_free(object) }
            var tree: OpaquePointer?
            try check(git_commit_tree(&tree, object), "read the tree of \(commit.short)")
            defer { git_tree_free(tree) }
            var entry: OpaquePointer?
            guard git_tree_entry_bypath(&entry, tree, path) == 0 else { return false }
            defer { git_tree_entry_free(entry) }
            return git_tree_entry_type(entry) == GIT_OBJECT_TREE
        }
    }

    /// Whether the object `id` is in the repository.
    public func contains(_ id: ObjectID) -> Bool {
        (try? withHandle { repo throws in
            var odb: OpaquePointer?
            try check(git_repository_odb(&odb, repo), "open object database")
            defer { git_odb_free(odb) }
            var oid = id.oid
            return git_odb_exists(odb, &oid) == 1
        }) ?? false
    }

    /// A shallow clone (`git clone --depth`): history ends at a boundary, and the root commit is not known.
    public var isShallow: Bool {
        (try? withHandle { repo in git_repository_is_shallow(repo) == 1 }) ?? false
    }

    /// True when the commit's tree differs from its first parent's at any of `paths`. Compares tree entry ids,
    /// so an unchanged subtree costs one lookup, not a diff.
    private static func touches(commit: OpaquePointer, paths: [String], repo: OpaquePointer) throws -> Bool {
        var tree: OpaquePointer?
        try check(git_commit_tree(&tree, commit), "read tree of commit")
        defer { git_tree_free(tree) }
        var parentTree: OpaquePointer?
        if git_commit_parentcount(commit) > 0 {
            var parent: OpaquePointer?
            try check(git_commit_parent(&parent, commit, 0), "read parent commit")
            defer { git_commit_free(parent) }
            try check(git_commit_tree(&parentTree, parent), "read tree of parent commit")
        }
        defer { git_tree_free(parentTree) }
        for path in paths {
            let now = try entryID(tree: tree!, path: path)
            let before = try parentTree.flatMap { parent throws in try entryID(tree: parent, path: path) }
            if now != before { return true }
        }
        return false
    }

    private static func entryID(tree: OpaquePointer, path: String) throws -> ObjectID? {
        let trimmed = path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if trimmed.isEmpty { return ObjectID(git_tree_id(tree)) }
        var entry: OpaquePointer?
        let rc = git_tree_entry_bypath(&entry, tree, trimmed)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try check(rc, "look up \(trimmed)")
        defer { git_tree_entry_free(entry) }
        return ObjectID(git_tree_entry_id(entry))
    }

    // MARK: - Trees and blobs

    /// Every file under `root` (a directory path, "" for the whole tree) in the commit's tree, recursively,
    /// read from the object database without a checkout. Paths are relative to the repository root.
    public func files(at commitID: ObjectID, under root: String = "") throws -> [TreeFile] {
        try withHandle { repo throws in
            var commit: OpaquePointer?
            var oid = commitID.oid
            try check(git_commit_lookup(&commit, repo, &oid), "read commit \(commitID.short)")
            defer { git_commit_free(commit) }
            var tree: OpaquePointer?
            try check(git_commit_tree(&tree, commit), "read tree of \(commitID.short)")
            defer { git_tree_free(tree) }

            let prefix = root.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            var start = tree!
            var subtree: OpaquePointer?
            defer { git_tree_free(subtree) }
            if !prefix.isEmpty {
                var entry: OpaquePointer?
                try check(
                    git_tree_entry_bypath(&entry, tree, prefix), "find '\(prefix)' at commit \(commitID.short)")
                defer { git_tree_entry_free(entry) }
                guard git_tree_entry_type(entry) == GIT_OBJECT_TREE else {
                    throw GitError(
                        code: GIT_ENOTFOUND.rawValue, operation: "find '\(prefix)' at commit \(commitID.short)",
                        message: "'\(prefix)' is a file, not a directory")
                }
                try check(git_tree_lookup(&subtree, repo, git_tree_entry_id(entry)), "read tree '\(prefix)'")
                start = subtree!
            }
            var files: [TreeFile] = []
            try Self.collect(tree: start, prefix: prefix.isEmpty ? "" : prefix + "/", repo: repo, into: &files)
            return files
        }
    }

    private static func collect(
        tree: OpaquePointer, prefix: String, repo: OpaquePointer, into files: inout [TreeFile]
    ) throws {
        for index in 0..<git_tree_entrycount(tree) {
            guard let entry = git_tree_entry_byindex(tree, index) else { continue }
            let name = prefix + String(cString: git_tree_entry_name(entry))
            switch git_tree_entry_type(entry) {
            case GIT_OBJECT_TREE:
                var child: OpaquePointer?
                try check(git_tree_lookup(&child, repo, git_tree_entry_id(entry)), "read tree '\(name)'")
                defer { git_tree_free(child) }
                try collect(tree: child!, prefix: name + "/", repo: repo, into: &files)
            case GIT_OBJECT_BLOB:
                let mode = git_tree_entry_filemode(entry)
                files.append(
                    TreeFile(
                        path: name, blob: ObjectID(git_tree_entry_id(entry)),
                        isExecutable: mode == GIT_FILEMODE_BLOB_EXECUTABLE, isSymlink: mode == GIT_FILEMODE_LINK))
            case GIT_OBJECT_COMMIT:
                // A submodule: listed so that a reader can say its manifests are not read; its commit is not here.
                files.append(
                    TreeFile(
                        path: name, blob: ObjectID(git_tree_entry_id(entry)), isExecutable: false, isSubmodule: true))
            default:
                continue
            }
        }
    }

    /// The content of a blob.
    public func blob(_ id: ObjectID) throws -> [UInt8] {
        try looseObjects.refuseDamaged(id.hex)
        return try withHandle { repo throws in
            var blob: OpaquePointer?
            var oid = id.oid
            try check(git_blob_lookup(&blob, repo, &oid), "read blob \(id.short)")
            defer { git_blob_free(blob) }
            let size = Int(git_blob_rawsize(blob))
            guard size > 0, let raw = git_blob_rawcontent(blob) else { return [] }
            return Array(UnsafeRawBufferPointer(start: raw, count: size))
        }
    }

    /// Files staged in the index under `root`: what the next commit would hold. Their blobs are already in the
    /// object database (`git add` writes them), so `blob(_:)` reads them.
    ///
    /// `indexFile` reads another index file: `git commit -a` and `git commit PATH` stage into a temporary index
    /// and name it in `$GIT_INDEX_FILE` for the hooks (libgit2 does not read that variable itself). A relative
    /// path is taken from the current directory, where git runs hooks.
    public func stagedFiles(under root: String = "", indexFile: String? = nil) throws -> [TreeFile] {
        try withHandle { repo throws in
            var index: OpaquePointer?
            if let indexFile, !indexFile.isEmpty {
                try check(git_index_open(&index, indexFile), "open the index \(indexFile)")
            } else {
                try check(git_repository_index(&index, repo), "open the index")
            }
            defer { git_index_free(index) }
            let prefix = root.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            var files: [TreeFile] = []
            for position in 0..<git_index_entrycount(index) {
                guard let entry = git_index_get_byindex(index, position) else { continue }
                let path = String(cString: entry.pointee.path)
                guard prefix.isEmpty || path.hasPrefix(prefix + "/") else { continue }
                // Stage bits live in flags; a conflicted entry (stage > 0) is not staged content.
                let stage = (Int32(entry.pointee.flags) & GIT_INDEX_ENTRY_STAGEMASK) >> GIT_INDEX_ENTRY_STAGESHIFT
                guard stage == 0 else { continue }
                var id = entry.pointee.id
                files.append(
                    TreeFile(
                        path: path, blob: ObjectID(&id),
                        isExecutable: entry.pointee.mode == GIT_FILEMODE_BLOB_EXECUTABLE.rawValue,
                        isSymlink: entry.pointee.mode == GIT_FILEMODE_LINK.rawValue))
            }
            return files
        }
    }

    // MARK: - Diff

    /// Paths that differ between the trees of two commits (`from` nil: everything in `to` is added).
    public func changedPaths(from old: ObjectID?, to new: ObjectID) throws -> [ChangedPath] {
        try withHandle { repo throws in
            let newTree = try Self.tree(of: new, repo: repo)
            defer { git_tree_free(newTree) }
            let oldTree = try old.map { id throws in try Self.tree(of: id, repo: repo) }
            defer { git_tree_free(oldTree) }
            var diff: OpaquePointer?
            try check(
                git_diff_tree_to_tree(&diff, repo, oldTree, newTree, nil),
                "diff \(old?.short ?? "empty tree")..\(new.short)")
            defer { git_diff_free(diff) }
            var changes: [ChangedPath] = []
            for index in 0..<git_diff_num_deltas(diff) {
                guard let delta = git_diff_get_delta(diff, index)?.pointee else { continue }
                let status: ChangedPath.Status
                switch delta.status {
                case GIT_DELTA_ADDED: status = .added
                case GIT_DELTA_DELETED: status = .deleted
                case GIT_DELTA_RENAMED: status = .renamed
                case GIT_DELTA_TYPECHANGE: status = .typeChanged
                default: status = .modified
                }
                changes.append(
                    ChangedPath(
                        status: status,
                        oldPath: delta.old_file.path.map { String(cString: $0) } ?? "",
                        newPath: delta.new_file.path.map { String(cString: $0) } ?? ""))
            }
            return changes
        }
    }

    private static func tree(of commitID: ObjectID, repo: OpaquePointer) throws -> OpaquePointer {
        var commit: OpaquePointer?
        var oid = commitID.oid
        try check(git_commit_lookup(&commit, repo, &oid), "read commit \(commitID.short)")
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try check(git_commit_tree(&tree, commit), "read tree of \(commitID.short)")
        return tree!
    }

    // MARK: - Writing

    /// The identity git would commit as here (user.name and user.email from the repository's configuration).
    public func defaultSignature() throws -> Signature {
        try withHandle { repo in
            var signature: UnsafeMutablePointer<git_signature>?
            try check(git_signature_default(&signature, repo), "read user.name and user.email")
            defer { git_signature_free(signature) }
            return Self.signature(signature)
        }
    }

    /// Stages every path in `paths` from the work tree and commits them on the branch HEAD points to.
    /// Used by `tide init` for the first commit; needs a work tree.
    @discardableResult
    public func commitWorkingFiles(_ paths: [String], message: String) throws -> ObjectID {
        try withHandle { repo throws in
            var index: OpaquePointer?
            try check(git_repository_index(&index, repo), "open the index")
            defer { git_index_free(index) }
            for path in paths {
                try check(git_index_add_bypath(index, path), "stage \(path)")
            }
            try check(git_index_write(index), "write the index")
            var treeOID = git_oid()
            try check(git_index_write_tree(&treeOID, index), "write tree")
            var tree: OpaquePointer?
            try check(git_tree_lookup(&tree, repo, &treeOID), "read new tree")
            defer { git_tree_free(tree) }

            var signature: UnsafeMutablePointer<git_signature>?
            if git_signature_default(&signature, repo) < 0 {
                try check(git_signature_now(&signature, "Tide", "tide@localhost"), "make commit signature")
            }
            defer { git_signature_free(signature) }

            var parent: OpaquePointer?
            var headRef: OpaquePointer?
            if git_repository_head(&headRef, repo) == 0 {
                defer { git_reference_free(headRef) }
                try check(git_reference_peel(&parent, headRef, GIT_OBJECT_COMMIT), "read HEAD commit")
            }
            defer { git_object_free(parent) }
            var commitOID = git_oid()
            var parents: [OpaquePointer?] = parent.map { [$0] } ?? []
            let rc = parents.withUnsafeMutableBufferPointer { buffer in
                git_commit_create(
                    &commitOID, repo, "HEAD", signature, signature, nil, message, tree, buffer.count,
                    buffer.baseAddress)
            }
            try check(rc, "create commit")
            return ObjectID(commitOID)
        }
    }
}
