import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An advisory whole-file `flock`, held while a reconcile pass runs. Released on `release()`, or by the kernel
/// when the process exits however it exits.
final class FileLock: Sendable {
    private let descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    static func acquire(path: String, timeout: Double, statePath: String) async throws -> FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw StateError.database(
                path: statePath, message: "cannot open lock file \(path): \(String(cString: strerror(errno)))")
        }
        let start = Date()
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let message = String(cString: strerror(errno))
                close(fd)
                throw StateError.database(path: statePath, message: "cannot lock \(path): \(message)")
            }
            let waited = Date().timeIntervalSince(start)
            if waited >= timeout {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                close(fd)
                throw StateError.locked(
                    path: statePath, holder: holder?.isEmpty == false ? holder : nil, waitedSeconds: waited)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let note = "pid \(getpid()) since \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
        return FileLock(descriptor: fd)
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
        _ = ftruncate(descriptor, 0)
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
