public import TideGit

/// The files of a revision that executors and analysis providers run: a program named by a relative path
/// (`./bin/deploy`, `tools/measure.py`) is a file of the same revision, under the manifest root, never a file of
/// whatever directory Tide happens to run in.
///
/// A program is taken with its *unit*: the top-level directory it is in (`bin` for `./bin/deploy`), so a script
/// can use the files beside it; a program at the manifest root brings the root's own files (not its
/// directories). Units are content-addressed: `digest(of:)` names a unit by what it holds (path, mode and blob of
/// every regular file), so two revisions whose `bin/` is the same share one materialised copy, and a change to
/// any file of a unit is a change to every executor that runs a program from it.
///
/// What must never happen: a program outside the manifest root (`..` is refused), a symbolic link followed (links
/// are not part of a unit), a program that is not executable in git (mode 100755) accepted.
public enum RevisionFiles {
    /// A program path relative to the manifest root (`bin/deploy`), when `program` names a file of the revision:
    /// it contains a `/` and does not start with one. Nil for an absolute path or a bare name (looked up on PATH).
    public static func relativePath(_ program: String) -> String? {
        guard program.contains("/"), !program.hasPrefix("/") else { return nil }
        var parts: [Substring] = []
        for part in program.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": return ".."  // refused by `problem(with:)`
            default: parts.append(part)
            }
        }
        return parts.joined(separator: "/")
    }

    /// The unit a program (a path relative to the manifest root) is materialised with: its top-level directory,
    /// or "" for a program at the root.
    public static func unit(of path: String) -> String {
        guard let slash = path.firstIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    /// Why `program` cannot run as a file of the revision whose files are `files` (relative to the manifest
    /// root), or nil when it can (or is not a file of the revision at all).
    public static func problem(with program: String, in files: [String: TreeFile]) -> String? {
        guard let path = relativePath(program) else { return nil }
        if path == ".." || path.isEmpty || path.split(separator: "/").contains("..") {
            return
                "'\(program)' goes up with '..'; a program Tide runs from the config repo is named by its path under "
                + "the manifest root"
        }
        guard let file = files[path] else {
            return "'\(program)' is not a file of this revision under the manifest root (programs named by a "
                + "relative path run from the config repo's commit, not from a directory on the server): commit it, "
                + "or name an absolute path or a program on PATH"
        }
        if file.isSymlink {
            return "'\(program)' is a symbolic link; Tide runs only regular files of the revision"
        }
        if !file.isExecutable {
            return "'\(program)' is not executable in git (mode 100644): git update-index --chmod=+x \(path)"
        }
        return nil
    }

    /// The files of `unit` among `files` (paths relative to the manifest root), regular files only.
    public static func files(of unit: String, in files: [String: TreeFile]) -> [(path: String, file: TreeFile)] {
        files.filter { path, file in
            guard !file.isSymlink else { return false }
            return unit.isEmpty ? !path.contains("/") : path.hasPrefix(unit + "/")
        }
        .map { (path: $0.key, file: $0.value) }
        .sorted { $0.path < $1.path }
    }

    /// The content address of a unit: the git blob hash of its listing (`MODE PATH BLOB` lines).
    public static func digest(of unit: String, in files: [String: TreeFile]) -> String {
        let listing = Self.files(of: unit, in: files).map { entry in
            "\(entry.file.isExecutable ? "100755" : "100644") \(entry.path) \(entry.file.blob.hex)\n"
        }
        return ObjectID.blobHash(of: Array(("unit \(unit)\n" + listing.joined()).utf8)).hex
    }

    /// `files` (paths relative to the repository root) keyed by their path relative to the manifest `root`.
    public static func byPath(_ files: [TreeFile], root: String) -> [String: TreeFile] {
        let prefix = root.isEmpty ? "" : root.trimmingCharacters(in: ["/"]) + "/"
        var result: [String: TreeFile] = [:]
        result.reserveCapacity(files.count)
        for file in files where file.path.hasPrefix(prefix) && !file.isSubmodule {
            result[String(file.path.dropFirst(prefix.count))] = file
        }
        return result
    }
}

extension ExecutorManifest {
    /// The programs this executor runs from the revision (relative paths), with where each is written.
    public var revisionPrograms: [(program: String, location: SourceLocation)] {
        var programs: [(String, String)] = []
        switch kind {
        case .command(let argv), .plugin(let argv):
            if let first = argv.first { programs.append((first, "command")) }
        case .nginx(let nginx):
            if let first = nginx.test.first { programs.append((first, "test")) }
            if let first = nginx.reload.first { programs.append((first, "reload")) }
        case .flags, .sql, .http:
            break
        }
        return programs.filter { RevisionFiles.relativePath($0.0) != nil }.map {
            ($0.0, fieldLocations[$0.1] ?? location)
        }
    }

    /// What the executor runs, as canonical JSON: its type's payload and its environment — not its timeout,
    /// retries or circuit breaker, which change how an action is tried, not what it does.
    public var whatRuns: JSONValue {
        var object: [String: JSONValue] = [
            "type": .string(type.rawValue),
            "env": .object(environment.mapValues { .string($0) }),
        ]
        switch kind {
        case .command(let argv), .plugin(let argv):
            object["command"] = .array(argv.map { .string($0) })
        case .flags(let path):
            object["path"] = .string(path)
        case .nginx(let nginx):
            object["configDir"] = .string(nginx.configDir)
            object["test"] = .array(nginx.test.map { .string($0) })
            object["reload"] = .array(nginx.reload.map { .string($0) })
        case .sql:
            break
        case .http(let http):
            object.merge(http.whatRuns) { $1 }
        }
        return .object(object)
    }

    /// The executor's digest at a revision: what it runs and the content of every unit its programs come from. A
    /// change to either is a change to every target the executor deploys (classified CONFIG, gated like one).
    public func digest(files: [String: TreeFile]) -> String {
        let units = Set(revisionPrograms.compactMap { RevisionFiles.relativePath($0.program) }.map(RevisionFiles.unit))
        let unitDigests = units.sorted().map { "\($0)=\(RevisionFiles.digest(of: $0, in: files))" }
        let text = whatRuns.canonicalJSON + "\n" + unitDigests.joined(separator: "\n")
        return ObjectID.blobHash(of: Array(text.utf8)).hex
    }
}
