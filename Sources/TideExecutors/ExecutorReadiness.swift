import Foundation
public import TideManifest

#if canImport(Glibc)
    import Glibc
#endif

/// One thing an executor needs in order to run, checked on this machine now (`tide readiness`).
public struct ReadinessCheck: Sendable, Hashable, Codable {
    public var name: String
    public var pass: Bool
    /// What was checked and what was found, naming the executor; for a failure, what to do.
    public var detail: String

    public init(name: String, pass: Bool, detail: String) {
        self.name = name
        self.pass = pass
        self.detail = detail
    }
}

/// What a target's next rollout asks of its executor.
public struct ReadinessTarget: Sendable {
    public var id: TargetID
    /// The version desired there.
    public var version: String
    /// The version running there now, when it is another one: a progressive rollout routes to it beside the
    /// candidate, and a rollback returns to it.
    public var stable: String?
    /// The target's configuration (the environment's override merged in).
    public var config: JSONValue

    public init(id: TargetID, version: String, stable: String?, config: JSONValue) {
        self.id = id
        self.version = version
        self.stable = stable
        self.config = config
    }
}

/// Checks what makes each built-in executor able to run a target's rollout, finding files as the executors do:
/// relative paths against `workingDirectory`, program names on the `PATH` the executor's process gets.
public struct ExecutorReadiness: Sendable {
    public let workingDirectory: String

    public init(workingDirectory: String) {
        self.workingDirectory = workingDirectory
    }

    /// The checks of a service's executor for one target.
    public func checks(_ executor: ExecutorManifest, for target: ReadinessTarget) async -> [ReadinessCheck] {
        switch executor.type {
        case .command, .plugin:
            return [program(executor)]
        case .nginx:
            return await nginx(executor, for: target)
        case .flags:
            return [flagsFile(executor)]
        case .http:
            return [httpEndpoint(executor)]
        case .sql:
            // Validation refuses this; kept so that a report never claims a sql executor can deploy a service.
            return [
                ReadinessCheck(
                    name: "executor", pass: false,
                    detail: "\(executor.name) (sql) runs Migrations, not a service's actions: give the service a "
                        + "command, plugin, nginx or flags executor")
            ]
        }
    }

    /// command and plugin: the program of `command` is there and executable.
    func program(_ executor: ExecutorManifest) -> ReadinessCheck {
        let owner = "\(executor.name) (\(executor.type.rawValue))"
        let program = executor.command.first ?? ""
        switch locate(program, environment: executor.environment) {
        case .success(let found):
            let path = (found as NSString).standardizingPath
            let started = executor.type == .plugin ? "; it starts at the first action" : ""
            return ReadinessCheck(
                name: "executor program", pass: true,
                detail: "\(owner): \(path == program ? path : "\(program) is \(path)"), executable\(started)")
        case .failure(let problem):
            return ReadinessCheck(name: "executor program", pass: false, detail: "\(owner): \(problem)")
        }
    }

    /// Why a program cannot be run, and what to do.
    struct ProgramProblem: Error, CustomStringConvertible {
        var description: String
    }

    /// Where `program` runs from, found as the executor finds it (`CommandExecutor.programPath`, else the `PATH`
    /// of the executor's process: its `env`, else what `ExecutorEnvironment` gives it).
    func locate(
        _ program: String, environment: [String: String], field: String = "spec.command"
    ) -> Result<String, ProgramProblem> {
        if let path = CommandExecutor.programPath(program, workingDirectory: workingDirectory) {
            let shown = (path as NSString).standardizingPath
            switch Self.notRunnable(path) {
            case nil:
                return .success(path)
            case .missing:
                let fix =
                    program.hasPrefix("/")
                    ? "install it there or fix \(field)"
                    : "commit it at \(program) in the config repo (its work tree is \(workingDirectory)) or fix "
                        + field
                return .failure(ProgramProblem(description: "\(shown) does not exist: \(fix)"))
            case .directory:
                return .failure(ProgramProblem(description: "\(shown) is a directory: fix \(field)"))
            case .notExecutable:
                return .failure(
                    ProgramProblem(
                        description: "\(shown) is not executable: chmod +x it (in git: git update-index --chmod=+x)"))
            }
        }
        // The PATH the executor's process gets (see `ExecutorEnvironment`), not this process's.
        let search =
            environment["PATH"] ?? ExecutorEnvironment.configured.environment([:])["PATH"] ?? Self.systemPath
        for directory in search.split(separator: ":") where directory.hasPrefix("/") {
            let candidate = (String(directory) as NSString).appendingPathComponent(program)
            if Self.notRunnable(candidate) == nil { return .success(candidate) }
        }
        return .failure(
            ProgramProblem(
                description: "\(program) is not on PATH (\(search)): install it, or give its full path in "
                    + "\(field) (or PATH in spec.env)"))
    }

    enum Unrunnable {
        case missing, directory, notExecutable
    }

    /// Nil when `path` is an executable file; else why not.
    static func notRunnable(_ path: String) -> Unrunnable? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return .missing }
        if isDirectory.boolValue { return .directory }
        return access(path, X_OK) == 0 ? nil : .notExecutable
    }

    /// The system's default search path, which a process without `PATH` gets (`confstr(_CS_PATH)`).
    static let systemPath: String = {
        let size = confstr(Int32(_CS_PATH), nil, 0)
        guard size > 1 else { return "/usr/bin:/bin" }
        var buffer = [CChar](repeating: 0, count: size)
        _ = confstr(Int32(_CS_PATH), &buffer, size)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// A directory tide must write in: nil when it exists and is writable; else why not.
    static func notWritableDirectory(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "does not exist" }
        guard isDirectory.boolValue else { return "is not a directory" }
        return access(path, W_OK | X_OK) == 0 ? nil : "is not writable by this user (uid \(getuid()))"
    }

    /// The deepest directory of `path` (itself included) that exists.
    static func nearestExisting(_ path: String) -> String {
        var current = path
        while !FileManager.default.fileExists(atPath: current) && current != "/" && !current.isEmpty {
            current = (current as NSString).deletingLastPathComponent
        }
        return current.isEmpty ? "/" : current
    }

    func resolve(_ path: String) -> String {
        FlagsExecutor.resolve(path, in: workingDirectory)
    }
}
