import Foundation
internal import Subprocess

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

    /// Runs `program` (a path, or a name looked up on `PATH`) with `arguments`; `environment` is added to Tide's
    /// own (a nil value removes a variable); `input` goes to stdin through an unlinked temporary file; at most
    /// `outputLimit` bytes of each stream are kept (the rest is read and dropped).
    public static func run(
        _ program: String, arguments: [String], environment: [String: String?] = [:], workingDirectory: String? = nil,
        input: String, timeout: Double, outputLimit: Int = 64 * 1024
    ) async -> Result {
        _ = ignoringBrokenPipes
        let start = ContinuousClock.now
        func elapsed() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        var variables: [Environment.Key: String?] = [:]
        for (name, value) in environment {
            if let key = Environment.Key(rawValue: name) { variables[key] = value }
        }
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
        let configuration = Configuration(
            executable: program.contains("/") ? .path(FilePath(program)) : .name(program),
            arguments: Arguments(arguments),
            environment: .inherit.updating(variables),
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
        return await withTaskGroup(of: Race.self) { group in
            group.addTask {
                do {
                    let stdinInput = FileDescriptorInput.fileDescriptor(stdin, closeAfterSpawningProcess: true)
                    let result = try await Subprocess.run(
                        configuration, input: stdinInput, output: .sequence, error: .sequence
                    ) { execution in
                        async let out = collect(execution.standardOutput, limit: outputLimit)
                        async let err = collect(execution.standardError, limit: outputLimit)
                        return try await (out, err)
                    }
                    let (out, err) = result.closureResult
                    switch result.terminationStatus {
                    case .exited(let code): return .finished(.exited(code), out, err)
                    case .signaled(let signal): return .finished(.signalled(signal), out, err)
                    }
                } catch is CancellationError {
                    return .cancelled
                } catch {
                    if Task.isCancelled { return .cancelled }
                    return .finished(.couldNotStart(describe(error)), "", "")
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(timeout))
                return Task.isCancelled ? .cancelled : .timerFired
            }
            var timedOut = false
            while let next = await group.next() {
                switch next {
                case .finished(let termination, let out, let err):
                    group.cancelAll()
                    let final: Termination = timedOut ? .timedOut : Task.isCancelled ? .cancelled : termination
                    return Result(termination: final, standardOutput: out, standardError: err, duration: elapsed())
                case .timerFired:
                    // Cancelling the run task starts its teardown sequence: SIGTERM to the process group, then
                    // SIGKILL after two seconds. The run task then finishes with what the process wrote.
                    timedOut = true
                    group.cancelAll()
                case .cancelled:
                    continue
                }
            }
            return Result(
                termination: timedOut ? .timedOut : .cancelled, standardOutput: "", standardError: "",
                duration: elapsed())
        }
    }

    private enum Race: Sendable {
        case finished(Termination, String, String)
        case timerFired
        case cancelled
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
