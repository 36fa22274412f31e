import Foundation
internal import Subprocess
public import TideManifest

#if canImport(Glibc)
    import Glibc
#endif

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Runs the executor's argv once per action, with no shell in between (DESIGN.md §4): `TIDE_*` variables in the
/// environment, the request as JSON on stdin, exit status 0 for success. The process gets a session of its own
/// so that a timeout can kill it together with everything it started.
public struct CommandExecutor: Executor {
    public let manifest: ExecutorManifest
    /// Where the command runs, and what a relative program path (`./bin/deploy`) is resolved against.
    public let workingDirectory: String
    /// Bytes of stdout and stderr kept; the rest is read and dropped so the process never blocks on a full pipe.
    public static let outputLimit = 64 * 1024

    public init(manifest: ExecutorManifest, workingDirectory: String) {
        self.manifest = manifest
        self.workingDirectory = workingDirectory
    }

    var executable: Executable {
        Self.programPath(manifest.command[0], workingDirectory: workingDirectory).map { .path(FilePath($0)) }
            ?? .name(manifest.command[0])
    }

    /// The file a program of an argv names: a path with a '/' is taken relative to `workingDirectory`; a bare
    /// name (nil here) is looked up on the `PATH` the process gets, when it starts.
    static func programPath(_ program: String, workingDirectory: String) -> String? {
        guard program.contains("/") else { return nil }
        return program.hasPrefix("/") ? program : (workingDirectory as NSString).appendingPathComponent(program)
    }

    public func perform(_ request: ActionRequest) async -> ActionResult {
        // ETXTBSY: the program was just written, and a process forked elsewhere in this process at that moment
        // still holds it open for writing (until it execs). It passes in milliseconds: try again, as Go's
        // os/exec users and build tools do.
        var result = await attempt(request)
        for retry in 1...5 {
            guard case .couldNotStart(let why) = result.outcome, why.contains("Text file busy") else { break }
            try? await Task.sleep(for: .milliseconds(20 * retry))
            result = await attempt(request)
        }
        return result
    }

    private func attempt(_ request: ActionRequest) async -> ActionResult {
        _ = ignoringBrokenPipes
        let start = ContinuousClock.now
        func elapsed() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        let variables = Self.environment(
            manifest.environment.merging(request.environmentVariables, uniquingKeysWith: { $1 }))
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
        let configuration = Configuration(
            executable: executable,
            arguments: Arguments(Array(manifest.command.dropFirst())),
            environment: .inherit.updating(variables),
            workingDirectory: FilePath(workingDirectory),
            platformOptions: options)
        let timeout = manifest.timeout
        // The request goes to stdin from an unlinked temporary file rather than a pipe: an executor that exits
        // without reading it then cannot break the write, and nothing of the request stays on disk.
        let stdin: FileDescriptor
        do {
            stdin = try Self.requestFile(request.jsonLine())
        } catch {
            return ActionResult(outcome: .couldNotStart("cannot stage the request for stdin: \(error)"))
        }

        return await withTaskGroup(of: RaceResult.self) { group in
            group.addTask {
                do {
                    let input = FileDescriptorInput.fileDescriptor(stdin, closeAfterSpawningProcess: true)
                    let result = try await run(configuration, input: input, output: .sequence, error: .sequence) {
                        execution in
                        async let out = Self.collect(execution.standardOutput)
                        async let err = Self.collect(execution.standardError)
                        return try await (out, err)
                    }
                    let (out, err) = result.closureResult
                    switch result.terminationStatus {
                    case .exited(0): return .finished(.succeeded, out, err)
                    case .exited(let code): return .finished(.exited(code), out, err)
                    case .signaled(let signal): return .finished(.signalled(signal), out, err)
                    }
                } catch is CancellationError {
                    return .cancelled
                } catch {
                    if Task.isCancelled { return .cancelled }
                    return .finished(.couldNotStart(Self.describe(error)), "", "")
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(timeout))
                return .timerFired
            }
            var timedOut = false
            while let next = await group.next() {
                switch next {
                case .finished(let result, let out, let err):
                    group.cancelAll()
                    guard timedOut else {
                        return ActionResult(
                            outcome: result, standardOutput: out, standardError: err, duration: elapsed())
                    }
                    return ActionResult(
                        outcome: .timedOut(seconds: timeout), standardOutput: out,
                        standardError: err + "tide: timed out after \(ManifestDuration.format(timeout)); "
                            + "killed the process group\n", duration: elapsed())
                case .timerFired:
                    // Cancelling the run task starts its teardown sequence: SIGTERM to the process group, then
                    // SIGKILL after two seconds. The run task then finishes with what the process wrote.
                    timedOut = true
                    group.cancelAll()
                case .cancelled:
                    continue
                }
            }
            return ActionResult(outcome: .timedOut(seconds: timeout), duration: elapsed())
        }
    }

    /// What a process Tide starts gets on top of Tide's own environment: `variables`, and none of Tide's secrets
    /// (`SecretVariables`: the sql executors' password variables) unless `variables` sets them itself.
    static func environment(_ variables: [String: String]) -> [Environment.Key: String?] {
        var result: [Environment.Key: String?] = [:]
        for name in SecretVariables.withheld {
            if let key = Environment.Key(rawValue: name) { result.updateValue(nil, forKey: key) }
        }
        for (name, value) in variables {
            if let key = Environment.Key(rawValue: name) { result[key] = value }
        }
        return result
    }

    private static func requestFile(_ text: String) throws -> FileDescriptor {
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

    private enum RaceResult: Sendable {
        case finished(ActionResult.Outcome, String, String)
        case timerFired
        case cancelled
    }

    /// Reads a stream to its end, keeping the last `outputLimit` bytes.
    private static func collect(_ sequence: SubprocessOutputSequence) async throws -> String {
        var kept: [UInt8] = []
        for try await chunk in sequence {
            chunk.withUnsafeBytes { kept.append(contentsOf: $0) }
            if kept.count > 2 * outputLimit { kept.removeFirst(kept.count - outputLimit) }
        }
        if kept.count > outputLimit { kept.removeFirst(kept.count - outputLimit) }
        return String(decoding: kept, as: UTF8.self)
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? SubprocessError {
            return error.description
        }
        return "\(error)"
    }
}

/// An executor that exits without reading its stdin must not take Tide down with SIGPIPE when the request is
/// written to it; with the signal ignored the write fails with EPIPE instead, which is harmless.
let ignoringBrokenPipes: Bool = {
    signal(SIGPIPE, SIG_IGN)
    return true
}()

/// Makes the executors of format v1 from their manifests.
public struct DefaultExecutorFactory: ExecutorFactory {
    public let workingDirectory: String

    public init(workingDirectory: String) {
        self.workingDirectory = workingDirectory
    }

    public func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor {
        switch manifest.type {
        case .command: CommandExecutor(manifest: manifest, workingDirectory: workingDirectory)
        case .flags: FlagsExecutor(path: FlagsExecutor.resolve(manifest.path ?? "flags.json", in: workingDirectory))
        case .nginx: NginxExecutor(manifest: manifest, workingDirectory: workingDirectory)
        case .plugin: PluginExecutor(manifest: manifest, workingDirectory: workingDirectory)
        case .sql:
            throw MigrationError(
                "executor '\(manifest.name)' is a sql executor: it runs Migrations, not a service's actions")
        }
    }

    public func openDatabase(_ manifest: ExecutorManifest, environment: String) async throws -> any MigrationDatabase {
        try await MigrationDatabases.open(manifest, environment: environment, workingDirectory: workingDirectory)
    }
}
