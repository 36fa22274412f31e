import Foundation
import Synchronization
import TideManifest

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The exclusive lock a reconcile pass holds: an advisory `flock` on the state database file itself, so the lock
/// follows the file's identity (device and inode) — the same state reached through a symlink, a hard link or
/// another spelling of its path is the same lock. Released on `release()`, or by the kernel when the process
/// exits however it exits.
///
/// The descriptors are never closed, only returned to a pool for the next lock of the same file: closing any
/// descriptor of a file drops every POSIX record lock the process holds on it, and SQLite's own locks are POSIX
/// record locks (`flock` locks are separate from them on Linux, so taking one does not disturb SQLite).
/// A note with the holder's pid is written beside the resolved path (`STATE.lock`) for error messages.
final class FileLock: Sendable {
    private struct Identity: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private static let idle = Mutex<[Identity: [Int32]]>([:])

    private let descriptor: Int32
    private let identity: Identity
    private let notePath: String

    private init(descriptor: Int32, identity: Identity, notePath: String) {
        self.descriptor = descriptor
        self.identity = identity
        self.notePath = notePath
    }

    /// Waits up to `timeout` seconds for the lock on the database file at `path`.
    static func acquire(database path: String, timeout: Double) async throws -> FileLock {
        let fd = try descriptor(for: path)
        let notePath = Paths.resolved(path) + ".lock"
        let start = Date()
        while flock(fd.descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let message = String(cString: strerror(errno))
                park(fd.descriptor, fd.identity)
                throw StateError.database(path: path, message: "cannot lock \(path): \(message)")
            }
            let waited = Date().timeIntervalSince(start)
            if waited >= timeout {
                park(fd.descriptor, fd.identity)
                let holder = (try? String(contentsOfFile: notePath, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                throw StateError.locked(
                    path: path, holder: holder?.isEmpty == false ? holder : nil, waitedSeconds: waited)
            }
            try await Monotonic.sleep(seconds: 0.05)
        }
        let note = "pid \(getpid()) since \(ISO8601DateFormatter().string(from: Date()))\n"
        try? Data(note.utf8).write(to: URL(fileURLWithPath: notePath))
        return FileLock(descriptor: fd.descriptor, identity: fd.identity, notePath: notePath)
    }

    /// Throws when the file at `path` has more than one name (hard links): see `StateError.hardLinked`.
    static func checkSingleName(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0, info.st_nlink > 1 {
            throw StateError.hardLinked(path: path, links: Int(info.st_nlink))
        }
    }

    /// An idle descriptor of the file at `path` from the pool, or a new one.
    private static func descriptor(for path: String) throws -> (descriptor: Int32, identity: Identity) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw StateError.database(
                path: path, message: "cannot lock: \(String(cString: strerror(errno)))")
        }
        let identity = Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        if info.st_nlink > 1 { throw StateError.hardLinked(path: path, links: Int(info.st_nlink)) }
        if let pooled = idle.withLock({ $0[identity]?.popLast() }) { return (pooled, identity) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StateError.database(
                path: path, message: "cannot open for locking: \(String(cString: strerror(errno)))")
        }
        // The path may have been replaced between stat and open: key by what was opened.
        guard fstat(fd, &info) == 0 else { return (fd, identity) }
        let opened = Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
        if info.st_nlink > 1 {
            park(fd, opened)
            throw StateError.hardLinked(path: path, links: Int(info.st_nlink))
        }
        return (fd, opened)
    }

    private static func park(_ descriptor: Int32, _ identity: Identity) {
        idle.withLock { $0[identity, default: []].append(descriptor) }
    }

    /// Runs `body` holding an exclusive `flock` on `path`, waiting as long as another process holds it. For short
    /// critical sections only (schema migrations).
    static func withBlockingLock<T>(path: String, _ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw StateError.database(path: path, message: "cannot open lock file: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw StateError.database(path: path, message: "cannot lock: \(String(cString: strerror(errno)))")
            }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    func release() {
        _ = truncate(notePath, 0)
        flock(descriptor, LOCK_UN)
        Self.park(descriptor, identity)
    }
}
