import Foundation
public import TideManifest
internal import Subprocess

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
        let program = manifest.command[0]
        if program.contains("/") {
            let path = program.hasPrefix("/") ? program : (workingDirectory as NSString).appendingPathComponent(program)
            return .path(FilePath(path))
        }
        return .name(program)
    }

    public func perform(_ request: ActionRequest) async -> ActionResult {
        let start = ContinuousClock.now
        func elapsed() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        var variables: [Environment.Key: String?] = [:]
        for (key, value) in manifest.environment.merging(request.environmentVariables, uniquingKeysWith: { $1 }) {
            if let key = Environment.Key(rawValue: key) { variables[key] = value }
        }
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
        let configuration = Configuration(
            executable: executable,
            arguments: Arguments(Array(manifest.command.dropFirst())),
            environment: .inherit.updating(variables),
            workingDirectory: FilePath(workingDirectory),
            platformOptions: options)
        let input = request.jsonLine()
        let timeout = manifest.timeout

        let outcome = await withTaskGroup(of: RaceResult.self) { group in
            group.addTask {
                do {
                    let result = try await run(configuration, input: .string(input), output: .sequence, error: .sequence) {
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
            var outcome = ActionResult(outcome: .couldNotStart("no result"))
            while let next = await group.next() {
                switch next {
                case .finished(let result, let out, let err):
                    group.cancelAll()
                    return ActionResult(outcome: result, standardOutput: out, standardError: err, duration: elapsed())
                case .timerFired:
                    // Cancelling the run task triggers the teardown sequence: SIGTERM to the process group, then
                    // SIGKILL after two seconds.
                    outcome = ActionResult(
                        outcome: .timedOut(seconds: timeout), standardError: "timed out after "
                            + ManifestDuration.format(timeout), duration: timeout)
                    group.cancelAll()
                case .cancelled:
                    continue
                }
            }
            outcome.duration = elapsed()
            return outcome
        }
        return outcome
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

/// Makes the executors of format v1 from their manifests.
public struct DefaultExecutorFactory: ExecutorFactory {
    public let workingDirectory: String

    public init(workingDirectory: String) {
        self.workingDirectory = workingDirectory
    }

    public func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor {
        switch manifest.type {
        case .command: CommandExecutor(manifest: manifest, workingDirectory: workingDirectory)
        }
    }
}
