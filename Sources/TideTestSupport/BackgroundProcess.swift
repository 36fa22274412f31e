import Foundation

/// A long-running child (a server, `tide run`) started with posix_spawn and reaped with waitpid on its own pid.
///
/// Not Foundation's Process: it takes a child's exit from a socket the child inherits, so a server that closes
/// every inherited descriptor at start (sshd does) looks exited, and Process then blocks its one monitoring
/// thread in waitpid — and with it every other Process in the test run.
public final class BackgroundProcess: @unchecked Sendable {
    public let pid: Int32
    private let lock = NSLock()
    private var status: Int32?

    /// Starts `executable` with `arguments` in `directory`, stdout and stderr appended to `output` (or
    /// discarded), stdin from /dev/null.
    public init(
        _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:],
        output: String? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let target = output ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, target, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let spawned = spawn(&pid, executable, arguments, in: directory, environment: environment, actions: &actions)
        guard spawned == 0 else {
            throw FixtureError("cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        self.pid = pid
    }

    /// The exit status (signals as 128 + N), or nil while it runs.
    public var exitStatus: Int32? {
        lock.withLock {
            if let status { return status }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            let exited = (raw & 0x7f) == 0
            status = exited ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            return status
        }
    }

    public var isRunning: Bool { exitStatus == nil }

    public func signal(_ number: Int32) {
        if isRunning { kill(pid, number) }
    }

    /// Waits (without blocking a thread) up to `timeout` seconds for the exit; its status, or nil.
    public func waitForExit(timeout: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let status = exitStatus { return status }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return exitStatus
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        }
    }
}
