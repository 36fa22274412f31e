public import Foundation
import TideManifest

/// An operator verb asked of the `tide run` that holds the state (`tide approve`, `promote`, `pause`, …): the CLI
/// records it, the service carries it out in its own context — its working directory, user, environment,
/// credentials, log and metrics — and records the outcome, which the CLI prints.
public struct OperatorRequest: Sendable, Codable, Hashable {
    public enum Verb: String, Sendable, Codable, CaseIterable {
        case approve, pause, resume, abort, retry, suspend, unsuspend
        /// `tide promote SERVICE --env E [--full]`: a rollout past its pause.
        case promote
        /// `tide promote SERVICE --to E [--version V]`: a commit.
        case promoteTo = "promote-to"
        /// `tide rollback SERVICE --env E [--reconcile]`: a commit.
        case rollback
    }

    public enum Status: String, Sendable, Codable {
        case pending, running, done
        /// Nobody took it in time; the CLI gave up on it (it is never carried out later).
        case cancelled
    }

    /// Assigned by the store.
    public var id: Int64?
    public var verb: Verb
    public var service: String
    /// The environment (`--env`, or `--to` for promote-to); nil for `suspend` of every environment.
    public var environment: String?
    /// `approve --version`, `promote --to … --version`.
    public var version: String?
    /// `promote --full`.
    public var full = false
    /// `rollback --reconcile`.
    public var reconcile = false
    public var actor: Actor
    public var createdAt: Date
    public var status: Status = .pending
    /// Which process carried it out (`tide run (pid 123)`).
    public var claimedBy: String?
    /// What the CLI prints: on stdout, on stderr, and its exit status.
    public var output: String?
    public var errorOutput: String?
    public var exitStatus: Int32?
    public var finishedAt: Date?

    public init(
        verb: Verb, service: String, environment: String?, version: String? = nil, full: Bool = false,
        reconcile: Bool = false, actor: Actor, createdAt: Date
    ) {
        self.verb = verb
        self.service = service
        self.environment = environment
        self.version = version
        self.full = full
        self.reconcile = reconcile
        self.actor = actor
        self.createdAt = createdAt
    }
}

/// A `tide run` process holding the state: written when it starts and every second while it runs, removed when it
/// stops. A verb that finds a live one hands its request over instead of acting itself.
public struct ServiceRecord: Sendable, Codable, Hashable {
    /// `HOST:PID:START` — unique for a process on a host.
    public var id: String
    public var host: String
    public var pid: Int32
    /// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22): a reused pid is another
    /// process.
    public var processStart: UInt64
    public var user: String
    public var listen: String
    public var startedAt: Date
    public var heartbeatAt: Date

    public init(
        id: String, host: String, pid: Int32, processStart: UInt64, user: String, listen: String, startedAt: Date,
        heartbeatAt: Date
    ) {
        self.id = id
        self.host = host
        self.pid = pid
        self.processStart = processStart
        self.user = user
        self.listen = listen
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
    }

    /// `tide run (pid 123 on host, user tide)`.
    public var description: String { "tide run (pid \(pid) on \(host), user \(user))" }
}

/// Where operator requests and the services that carry them out are recorded (the state store).
public protocol OperatorChannel: Sendable {
    /// Throws `StateError.replaced` when the file the state was opened from is no longer the one at its path (a
    /// restore by `mv`): verbs would write to the new file and a service holding the old one never see it.
    func checkNotReplaced() throws
    /// Records or refreshes a service's heartbeat.
    func beat(_ service: ServiceRecord) async throws
    /// Removes a service's record (it stopped).
    func removeService(_ id: String) async throws
    /// Every service recorded, newest heartbeat first.
    func services() async throws -> [ServiceRecord]
    /// Records a new request; returns its id.
    func submit(_ request: OperatorRequest) async throws -> Int64
    /// Marks the pending requests as running for `claimant` (atomically: no request is claimed twice) and
    /// returns them, oldest first.
    func claimRequests(by claimant: String) async throws -> [OperatorRequest]
    /// Records a request's outcome.
    func finish(_ id: Int64, output: String, errorOutput: String, exitStatus: Int32, at: Date) async throws
    /// Cancels a request nobody has taken; false when one already took it.
    func cancelIfPending(_ id: Int64) async throws -> Bool
    func request(_ id: Int64) async throws -> OperatorRequest?
}

extension ServiceRecord {
    /// Whether the process is still running on this host (same pid, same start time). A record from another host
    /// is never taken as alive: its process cannot be checked.
    public var isAlive: Bool {
        host == ProcessTable.hostName && ProcessTable.isRunning(pid, startedAt: processStart)
    }
}
