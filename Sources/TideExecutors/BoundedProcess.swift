import Foundation
internal import Subprocess
import Synchronization
import TideManifest

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Runs a program in a session of its own, with no shell, and a deadline: at the deadline (or when the calling
/// task is cancelled) its whole process group gets SIGTERM, then SIGKILL two seconds later. Used for executors
/// and for Tide's own network operations (a fetch that hangs is abandoned, a libgit2 crash stays in the child).
public enum BoundedProcess {
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        case couldNotStart(String)
        /// Killed at the deadline.
        case timedOut
        /// Killed because the calling task was cancelled (Tide is shutting down).
        case cancelled
    }

    public struct Result: Sendable {
        public var termination: Termination
        public var standardOutput: String
        public var standardError: String
        public var duration: Double
    }

    /// The process groups of the processes running now, so a process that must exit at once (a second SIGTERM)
    /// can take them with it instead of leaving them running.
    static let liveGroups = Mutex<Set<Int32>>([])

    static let closed = Mutex(false)

    /// Kills every process group `run` started that is still running (SIGKILL), and every one it starts from now
    /// on: the process is about to exit, and what runs in a session of its own would outlive it.
    public static func killAll() {
        closed.withLock { $0 = true }
        for group in liveGroups.withLock({ $0 }) { kill(-group, SIGKILL) }
    }

    /// Runs `program` (a path, or a name looked up on `PATH`) with `arguments`; `environment` is added to Tide's
    /// own (a nil value removes a variable) — or, with `replacingEnvironment`, is the whole environment; `input`
    /// goes to stdin through an unlinked temporary file; at most `outputLimit` bytes of each stream are kept (the
    /// rest is read and dropped).
    public static func run(
        _ program: String, arguments: [String], environment: [String: String?] = [:],
        replacingEnvironment: Bool = false, workingDirectory: String? = nil, input: String, timeout: Double,
        outputLimit: Int = 64 * 1024
    ) async -> Result {
        _ = ignoringBrokenPipes
        let start = ContinuousClock.now
        if closed.withLock({ $0 }) {
            return Result(termination: .cancelled, standardOutput: "", standardError: "", duration: 0)
        }
        func elapsed() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        var variables: [Environment.Key: String?] = [:]
        var whole: [Environment.Key: String] = [:]
        for (name, value) in environment {
            guard let key = Environment.Key(rawValue: name) else { continue }
            variables[key] = value
            if let value { whole[key] = value }
        }
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
        let configuration = Configuration(
            executable: program.contains("/") ? .path(FilePath(program)) : .name(program),
            arguments: Arguments(arguments),
            environment: replacingEnvironment ? .custom(whole) : .inherit.updating(variables),
            workingDirectory: workingDirectory.map { FilePath($0) },
            platformOptions: options)
        // stdin from an unlinked temporary file rather than a pipe: a process that exits without reading it then
        // cannot break the write, and nothing of the input stays on disk.
        let stdin: FileDescriptor
        do {
            stdin = try inputFile(input)
        } catch {
            return Result(
                termination: .couldNotStart("cannot stage the input for stdin: \(error)"), standardOutput: "",
                standardError: "", duration: elapsed())
        }
        do {
            let stdinInput = FileDescriptorInput.fileDescriptor(stdin, closeAfterSpawningProcess: true)
            let result = try await Subprocess.run(
                configuration, input: stdinInput, output: .sequence, error: .sequence
            ) { execution in
                let group = execution.processIdentifier.value
                _ = liveGroups.withLock { $0.insert(group) }
                if closed.withLock({ $0 }) { kill(-group, SIGKILL) }  // started while Tide was exiting
                let deadline = Deadline(processGroup: group, after: timeout)
                defer {
                    deadline.cancel()
                    _ = liveGroups.withLock { $0.remove(group) }
                }
                async let out = collect(execution.standardOutput, limit: outputLimit)
                async let err = collect(execution.standardError, limit: outputLimit)
                let (output, error) = try await (out, err)
                return (output, error, deadline.fired)
            }
            let (out, err, timedOut) = result.closureResult
            let termination: Termination
            if timedOut {
                termination = .timedOut
            } else if Task.isCancelled {
                termination = .cancelled
            } else {
                switch result.terminationStatus {
                case .exited(let code): termination = .exited(code)
                case .signaled(let signal): termination = .signalled(signal)
                }
            }
            return Result(termination: termination, standardOutput: out, standardError: err, duration: elapsed())
        } catch {
            // Cancelled (Tide is shutting down): Subprocess's teardown sent SIGTERM to the group, then SIGKILL.
            if Task.isCancelled || error is CancellationError {
                return Result(termination: .cancelled, standardOutput: "", standardError: "", duration: elapsed())
            }
            return Result(
                termination: .couldNotStart(describe(error)), standardOutput: "", standardError: "",
                duration: elapsed())
        }
    }

    /// The deadline of one process, kept on `Monotonic`'s timer thread rather than Swift's cooperative pool, whose
    /// threads other work can hold for seconds (and whose timers a faked wall clock stops): at the deadline, a
    /// process that is still running (not merely unreaped) is marked timed out and its group gets SIGTERM, then
    /// SIGKILL two seconds later. A process that exited in time is never reported as timed out, however late its
    /// result is read.
    final class Deadline: @unchecked Sendable {  // state behind `lock`; the alarms run on the timer thread
        private let lock = NSLock()
        private var timers: [Monotonic.Alarm] = []
        private var didFire = false
        private let processGroup: pid_t

        init(processGroup: pid_t, after seconds: Double) {
            self.processGroup = processGroup
            schedule(after: seconds) { [weak self] in self?.expire() }
        }

        var fired: Bool { lock.withLock { didFire } }

        private func schedule(after seconds: Double, _ handler: @escaping @Sendable () -> Void) {
            let alarm = Monotonic.after(seconds: min(seconds, 1e9), handler)
            lock.withLock { timers.append(alarm) }
        }

        private func expire() {
            guard Self.isRunning(processGroup) else {
                // The process exited in time; what it left behind in its group (a background child holding its
                // output open) goes, so the result can be read.
                kill(-processGroup, SIGKILL)
                return
            }
            lock.withLock { didFire = true }
            kill(-processGroup, SIGTERM)
            schedule(after: 2) { [processGroup] in
                // The whole group, whether or not its leader is still there.
                kill(-processGroup, SIGKILL)
            }
        }

        /// Running: not exited, and not even an unreaped zombie (waitid with WNOWAIT leaves it to its reaper).
        private static func isRunning(_ pid: pid_t) -> Bool {
            var info = siginfo_t()
            let rc = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
            return rc == 0 && info._sifields._sigchld.si_pid == 0
        }

        func cancel() {
            lock.withLock {
                timers.forEach { $0.cancel() }
                timers = []
            }
        }
    }

    private static func inputFile(_ text: String) throws -> FileDescriptor {
        var template = Array((NSTemporaryDirectory() + "/tide-request-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }  // buffer is never empty
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        let descriptor = FileDescriptor(rawValue: fd)
        do {
            _ = try descriptor.writeAll(Array(text.utf8))
            _ = try descriptor.seek(offset: 0, from: .start)
        } catch {
            try? descriptor.close()
            throw error
        }
        return descriptor
    }

    /// Reads a stream to its end, keeping the last `limit` bytes.
    private static func collect(_ sequence: SubprocessOutputSequence, limit: Int) async throws -> String {
        var kept: [UInt8] = []
        for try await chunk in sequence {
            chunk.withUnsafeBytes { kept.append(contentsOf: $0) }
            if kept.count > 2 * limit { kept.removeFirst(kept.count - limit) }
        }
        if kept.count > limit { kept.removeFirst(kept.count - limit) }
        return String(decoding: kept, as: UTF8.self)
    }

    private static func describe(_ error: any Error) -> String {
        (error as? SubprocessError)?.description ?? "\(error)"
    }
}
