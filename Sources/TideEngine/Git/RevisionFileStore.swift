public import Foundation
import Synchronization
public import TideExecutors
public import TideGit
import TideManifest

/// Materialised, read-only copies of the files executors run from the config repo (see `RevisionFiles`): a
/// program named `./bin/deploy` in an executor of revision R runs as `DIRECTORY/UNIT-DIGEST/bin/deploy`, a copy of
/// `bin/` exactly as R has it, with git's executable bits. Never a file of the directory Tide runs in, never a file
/// outside the manifest root, never a symbolic link's target, never another revision's file.
///
/// Copies are content-addressed (by the digest of the unit's listing), so revisions that share a unit share one
/// copy, and one is written once (in a temporary directory renamed into place, so a crash or a second process never
/// leaves a half-written copy under its final name). Copies not used for `retention` are removed; one that is
/// needed again is written again from git.
public final class RevisionFileStore: ProgramFiles {
    public let repository: Repository
    /// The manifest root inside the repository.
    public let root: String
    /// Where the copies are (the state directory's `revisions/`).
    public let directory: String
    /// How long an unused copy is kept.
    public let retention: TimeInterval
    /// `REVISION:PROGRAM` → the program's path, for copies known to exist.
    private let known = Mutex<[String: String]>([:])
    private let lastCollection = Mutex<Date?>(nil)

    public init(repository: Repository, root: String, directory: String, retention: TimeInterval = 7 * 86400) {
        self.repository = repository
        self.root = root
        self.directory = directory
        self.retention = retention
    }

    /// Why a program cannot be materialised.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public func path(of program: String, revision: String) throws -> String {
        let key = revision + ":" + program
        if let path = known.withLock({ $0[key] }), FileManager.default.fileExists(atPath: path) {
            touch((path as NSString).deletingLastPathComponent)
            return path
        }
        guard let commit = ObjectID(hex: revision) else { throw Failure(description: "'\(revision)' is not a commit") }
        let files = RevisionFiles.byPath(try repository.files(at: commit, under: root), root: root)
        if let problem = RevisionFiles.problem(with: program, in: files) {
            throw Failure(description: "revision \(commit.short): \(problem)")
        }
        guard let relative = RevisionFiles.relativePath(program) else { return program }
        let unit = RevisionFiles.unit(of: relative)
        let copy = (directory as NSString).appendingPathComponent(RevisionFiles.digest(of: unit, in: files))
        if !FileManager.default.fileExists(atPath: copy) {
            try materialise(RevisionFiles.files(of: unit, in: files), at: copy)
        }
        touch(copy)
        let path = (copy as NSString).appendingPathComponent(relative)
        known.withLock { $0[key] = path }
        collectGarbageOccasionally()
        return path
    }

    /// Writes `files` under a temporary name, makes them read-only, and renames the directory to `copy`.
    private func materialise(_ files: [(path: String, file: TreeFile)], at copy: String) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let scratch = (directory as NSString).appendingPathComponent(".tmp-\(UUID().uuidString)")
        do {
            var directories: Set<String> = [scratch]
            for entry in files {
                let path = (scratch as NSString).appendingPathComponent(entry.path)
                let parent = (path as NSString).deletingLastPathComponent
                try manager.createDirectory(atPath: parent, withIntermediateDirectories: true)
                var walk = parent
                while walk.count > scratch.count {
                    directories.insert(walk)
                    walk = (walk as NSString).deletingLastPathComponent
                }
                let bytes = try repository.blob(entry.file.blob)
                guard manager.createFile(atPath: path, contents: Data(bytes)) else {
                    throw Failure(description: "cannot write \(path)")
                }
                try manager.setAttributes(
                    [.posixPermissions: entry.file.isExecutable ? 0o555 : 0o444], ofItemAtPath: path)
            }
            for path in directories { try manager.setAttributes([.posixPermissions: 0o555], ofItemAtPath: path) }
            if rename(scratch, copy) != 0 {
                // Another process wrote the same copy first: theirs is the same content.
                guard errno == EEXIST || errno == ENOTEMPTY else {
                    throw Failure(description: "cannot move the copy into place: \(String(cString: strerror(errno)))")
                }
                Self.remove(scratch)
            }
        } catch {
            Self.remove(scratch)
            throw error
        }
    }

    /// Marks a copy as used now.
    private func touch(_ copy: String) {
        try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: copy)
    }

    /// At most once an hour: removes copies not used for `retention`, and scratch directories a crash left.
    private func collectGarbageOccasionally() {
        let due = lastCollection.withLock { last -> Bool in
            if let last, Date().timeIntervalSince(last) < 3600 { return false }
            last = Date()
            return true
        }
        if due { collectGarbage(before: Date().addingTimeInterval(-retention)) }
    }

    /// Removes copies last used before `date` (and scratch directories older than an hour).
    public func collectGarbage(before date: Date) {
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: directory) else { return }
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let modified = (try? manager.attributesOfItem(atPath: path))?[.modificationDate] as? Date else {
                continue
            }
            let limit = name.hasPrefix(".tmp-") ? Date().addingTimeInterval(-3600) : date
            if modified < limit {
                Self.remove(path)
                known.withLock { known in known = known.filter { !$0.value.hasPrefix(path + "/") } }
            }
        }
    }

    /// Removes a read-only tree (its directories are made writable first).
    static func remove(_ path: String) {
        let manager = FileManager.default
        if let enumerator = manager.enumerator(atPath: path) {
            try? manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            while let name = enumerator.nextObject() as? String {
                let full = (path as NSString).appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                if manager.fileExists(atPath: full, isDirectory: &isDirectory), isDirectory.boolValue {
                    try? manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: full)
                }
            }
        }
        try? manager.removeItem(atPath: path)
    }
}
