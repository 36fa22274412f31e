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
    /// Where the command runs, and what a relative program path (`./bin/deploy`) is resolved against when it was
    /// not resolved to a file of the revision (see `ProgramFiles`).
    public let workingDirectory: String
    /// What the process's environment is built from.
    public let environment: ExecutorEnvironment
    /// Bytes of stdout and stderr kept; the rest is read and dropped so the process never blocks on a full pipe.
    public static let outputLimit = 64 * 1024

    public init(
        manifest: ExecutorManifest, workingDirectory: String, environment: ExecutorEnvironment = .configured
    ) {
        self.manifest = manifest
        self.workingDirectory = workingDirectory
        self.environment = environment
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
            await Monotonic.pause(seconds: 0.02 * Double(retry))
            result = await attempt(request)
        }
        return result
    }

    private func attempt(_ request: ActionRequest) async -> ActionResult {
        let program = Self.programPath(manifest.command[0], workingDirectory: workingDirectory) ?? manifest.command[0]
        let timeout = manifest.timeout
        let result = await BoundedProcess.run(
            program, arguments: Array(manifest.command.dropFirst()),
            environment: environment.environment(
                manifest.environment.merging(request.environmentVariables, uniquingKeysWith: { $1 })),
            replacingEnvironment: true, workingDirectory: workingDirectory, input: request.jsonLine(),
            timeout: timeout, outputLimit: Self.outputLimit)
        let outcome: ActionResult.Outcome
        var standardError = result.standardError
        switch result.termination {
        case .exited(0): outcome = .succeeded
        case .exited(let code): outcome = .exited(code)
        case .signalled(let signal): outcome = .signalled(signal)
        case .couldNotStart(let why):
            return ActionResult(outcome: .couldNotStart(why))
        case .timedOut, .cancelled:
            // Cancelled: Tide is shutting down and stopped the process group; the journal leaves the step started.
            outcome = .timedOut(seconds: timeout)
            let why =
                result.termination == .timedOut
                ? "timed out after \(ManifestDuration.format(timeout))" : "shutting down"
            standardError += "tide: \(why); killed the process group\n"
        }
        return ActionResult(
            outcome: outcome, standardOutput: result.standardOutput, standardError: standardError,
            duration: result.duration)
    }

}

/// An executor that exits without reading its stdin must not take Tide down with SIGPIPE when the request is
/// written to it; with the signal ignored the write fails with EPIPE instead, which is harmless.
let ignoringBrokenPipes: Bool = {
    signal(SIGPIPE, SIG_IGN)
    return true
}()

/// Makes the executors of format v1 from their manifests.
///
/// Executors run in `workingDirectory` (the config repo's work tree, else the state directory: never the
/// directory of whoever typed the command), with the environment `environment` builds; a program named by a
/// relative path is the file of the action's revision that `programs` materialised.
public struct DefaultExecutorFactory: ExecutorFactory {
    public let workingDirectory: String
    /// The revision's files (nil: relative programs resolve against `workingDirectory`, for tests of executors
    /// alone).
    public let programs: (any ProgramFiles)?
    public let environment: ExecutorEnvironment

    public init(
        workingDirectory: String, programs: (any ProgramFiles)? = nil, environment: ExecutorEnvironment = .configured
    ) {
        self.workingDirectory = workingDirectory
        self.programs = programs
        self.environment = environment
    }

    public func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor {
        try makeExecutor(for: manifest, revision: nil)
    }

    public func makeExecutor(for manifest: ExecutorManifest, revision: String?) throws -> any Executor {
        let manifest = try resolvingPrograms(manifest, revision: revision)
        switch manifest.type {
        case .command:
            return CommandExecutor(manifest: manifest, workingDirectory: workingDirectory, environment: environment)
        case .flags:
            return FlagsExecutor(path: FlagsExecutor.resolve(manifest.path ?? "flags.json", in: workingDirectory))
        case .nginx:
            return NginxExecutor(manifest: manifest, workingDirectory: workingDirectory, environment: environment)
        case .plugin:
            return PluginExecutor(manifest: manifest, workingDirectory: workingDirectory, environment: environment)
        case .sql:
            throw MigrationError(
                "executor '\(manifest.name)' is a sql executor: it runs Migrations, not a service's actions")
        case .http:
            return try HTTPExecutor(manifest: manifest, workingDirectory: workingDirectory)
        }
    }

    /// The manifest with every program named by a relative path replaced by the absolute path of that file as
    /// `revision` has it.
    public func resolvingPrograms(_ manifest: ExecutorManifest, revision: String?) throws -> ExecutorManifest {
        guard let programs, let revision else { return manifest }
        func resolved(_ argv: [String]) throws -> [String] {
            guard let program = argv.first, RevisionFiles.relativePath(program) != nil else { return argv }
            return [try programs.path(of: program, revision: revision)] + argv.dropFirst()
        }
        var manifest = manifest
        switch manifest.kind {
        case .command(let argv): manifest.kind = .command(try resolved(argv))
        case .plugin(let argv): manifest.kind = .plugin(try resolved(argv))
        case .nginx(var nginx):
            nginx.test = try resolved(nginx.test)
            nginx.reload = try resolved(nginx.reload)
            manifest.kind = .nginx(nginx)
        case .flags, .sql, .http: break
        }
        return manifest
    }

    public func openDatabase(_ manifest: ExecutorManifest, environment: String) async throws -> any MigrationDatabase {
        try await MigrationDatabases.open(manifest, environment: environment, workingDirectory: workingDirectory)
    }
}
