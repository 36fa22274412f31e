import Foundation
public import TideManifest

/// One action for one target. Encoded as the JSON object the command executor reads on stdin.
public struct ActionRequest: Sendable, Codable, Hashable {
    public var action: ExecutorAction
    public var service: String
    public var environment: String
    public var version: String
    public var previousVersion: String?
    /// Share of traffic for the version, 0–100.
    public var weight: Int
    /// The config repo commit the action comes from.
    public var revision: String
    /// Idempotency key: the same step of the same rollout always carries the same id, also after a restart.
    public var actionID: String
    public var config: JSONValue
    /// The rollout strategy (recreate, rolling, blue-green, canary, shadow, ab).
    public var strategy: String?
    /// What the traffic action needs besides the weight: `{"match": …}` for split, `{"mirror": N}` for mirror.
    public var traffic: JSONValue?
    /// Identifies `version`'s side: the digest of its config (and migrations). Two sides of one version — a
    /// config-only change rolled out progressively — differ here.
    public var configDigest: String?
    /// The other side (`previousVersion`'s) as it runs: its config digest, config and revision, so an executor
    /// can run both sides of a config-only change, and a `rollback` knows what it goes back to.
    public var previousConfigDigest: String?
    public var previousConfig: JSONValue?
    public var previousRevision: String?
    /// On a `rollback` after an abort or a failure with `abortScaleDownDelay`: take the traffic back to `version`
    /// but keep the candidate (`previousVersion`) running; a `scale-down` follows when the delay ends.
    public var keepCandidate: Bool?

    public init(
        action: ExecutorAction, service: String, environment: String, version: String, previousVersion: String?,
        weight: Int, revision: String, actionID: String, config: JSONValue
    ) {
        self.action = action
        self.service = service
        self.environment = environment
        self.version = version
        self.previousVersion = previousVersion
        self.weight = weight
        self.revision = revision
        self.actionID = actionID
        self.config = config
    }

    enum CodingKeys: String, CodingKey {
        case action, service, environment, version, previousVersion, weight, revision
        case actionID = "actionId"
        case config, strategy, traffic, configDigest, previousConfigDigest, previousConfig, previousRevision
        case keepCandidate
    }

    /// The `TIDE_*` variables of the protocol.
    public var environmentVariables: [String: String] {
        var variables = [
            "TIDE_ACTION": action.rawValue,
            "TIDE_SERVICE": service,
            "TIDE_ENVIRONMENT": environment,
            "TIDE_VERSION": version,
            "TIDE_PREVIOUS_VERSION": previousVersion ?? "",
            "TIDE_WEIGHT": String(weight),
            "TIDE_REVISION": revision,
            "TIDE_ACTION_ID": actionID,
        ]
        if let strategy { variables["TIDE_STRATEGY"] = strategy }
        if let configDigest { variables["TIDE_CONFIG_DIGEST"] = configDigest }
        if let previousConfigDigest { variables["TIDE_PREVIOUS_CONFIG_DIGEST"] = previousConfigDigest }
        if let previousRevision { variables["TIDE_PREVIOUS_REVISION"] = previousRevision }
        if keepCandidate == true { variables["TIDE_KEEP_CANDIDATE"] = "1" }
        return variables
    }

    /// The stdin payload: one JSON object with sorted keys and a trailing newline.
    public func jsonLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings, numbers and JSONValue cannot fail.
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// How an action ended.
public struct ActionResult: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        case succeeded
        /// The process exited with a non-zero status.
        case exited(Int32)
        /// The process was killed by a signal it did not get from Tide.
        case signalled(Int32)
        /// The action outlived its timeout; its process group was killed.
        case timedOut(seconds: Double)
        /// The process could not be started at all.
        case couldNotStart(String)
        /// The executor answered that the action failed (a plugin's `"ok": false`), or answered out of protocol.
        case failed(String)
        /// What the action needs could not be reached or used just now (nginx's reload said "try again", a plugin
        /// went away or answered `"retry": true`, a disk was full): not a verdict on the candidate. Transient.
        case unavailable(String)
    }

    public var outcome: Outcome
    public var standardOutput: String
    /// Kept in the event log when the action fails (truncated to its last 64 KiB).
    public var standardError: String
    public var duration: Double

    public init(outcome: Outcome, standardOutput: String = "", standardError: String = "", duration: Double = 0) {
        self.outcome = outcome
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.duration = duration
    }

    public var succeeded: Bool { outcome == .succeeded }

    /// A failure that may well pass on a later try: the executor exited with 75 (EX_TEMPFAIL, "try again later"),
    /// timed out, or could not reach what it talks to (a refused connection, a busy or locked database). Tide
    /// retries these with the same action id and, when they persist, lets the target wait instead of failing it.
    public var isTimeout: Bool { if case .timedOut = outcome { true } else { false } }

    public var isTransient: Bool {
        switch outcome {
        case .exited(75), .timedOut, .unavailable: return true
        case .couldNotStart(let why):
            // Tide's own resources running short (descriptors, memory, disk) say nothing about the candidate.
            let text = (why + " " + standardError).lowercased()
            return (Self.transientWords + Self.ownResourceWords).contains { text.contains($0) }
        case .failed(let why):
            let text = (why + " " + standardError).lowercased()
            return Self.transientWords.contains { text.contains($0) }
        default: return false
        }
    }

    /// What a failure says when what the action talks to is busy or away for now.
    static let transientWords = [
        "connection refused", "temporarily unavailable", "database is locked", "database is busy",
    ]
    /// What starting a process says when Tide's own process is short of something (hardening round two, 1).
    static let ownResourceWords = [
        "too many open files", "cannot allocate memory", "no space left on device", "resource temporarily",
    ]

    /// One line a person can read in `tide status`.
    public var summary: String {
        let reason: String
        switch outcome {
        case .succeeded: return "succeeded"
        case .exited(let code): reason = "exited with status \(code)"
        case .signalled(let signal): reason = "killed by signal \(signal)"
        case .timedOut(let seconds):
            reason = "timed out after \(ManifestDuration.format(seconds)); process group killed"
        case .couldNotStart(let why): reason = "could not start: \(why)"
        case .failed(let why): return "failed: \(why)"
        case .unavailable(let why): return "unavailable (transient): \(why)"
        }
        let lastLine = standardError.split(separator: "\n").last.map { ": \($0)" } ?? ""
        return reason + lastLine
    }
}

/// Applies actions to a real platform.
public protocol Executor: Sendable {
    /// Performs one action. Never throws: every way an action can fail is an `ActionResult`.
    func perform(_ request: ActionRequest) async -> ActionResult
}

/// Where the programs a revision names by relative paths are on disk (see `RevisionFiles`).
public protocol ProgramFiles: Sendable {
    /// The absolute path of `program` (relative to the manifest root) as revision `revision` (a commit id) has it.
    func path(of program: String, revision: String) throws -> String
}

/// Builds executors from their manifests.
public protocol ExecutorFactory: Sendable {
    func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor
    /// The executor for actions of `revision` (a commit id): its relative programs are that revision's files.
    func makeExecutor(for manifest: ExecutorManifest, revision: String?) throws -> any Executor
    /// The database a `sql` executor names for `environment`.
    func openDatabase(_ manifest: ExecutorManifest, environment: String) async throws -> any MigrationDatabase
}

extension ExecutorFactory {
    public func makeExecutor(for manifest: ExecutorManifest, revision: String?) throws -> any Executor {
        try makeExecutor(for: manifest)
    }

    public func openDatabase(_ manifest: ExecutorManifest, environment: String) async throws -> any MigrationDatabase {
        try await MigrationDatabases.open(
            manifest, environment: environment, workingDirectory: FileManager.default.currentDirectoryPath)
    }
}
