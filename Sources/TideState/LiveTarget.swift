public import Foundation
public import TideGit
public import TideManifest

/// Where a target is in its lifecycle. Raw values are what `tide status --json` prints.
public enum TargetPhase: String, Sendable, Codable, CaseIterable {
    case pending = "Pending"
    case progressing = "Progressing"
    case healthy = "Healthy"
    case failed = "Failed"
    case removing = "Removing"
    /// A failed rollout was undone automatically: the stable version runs again, the failed one is held.
    case rolledBack = "RolledBack"
    /// Traffic is being taken back to stable (a failed step, `tide abort`, a pre-emption) and that has not
    /// succeeded yet: retried with backoff until stable serves; the rollout never advances meanwhile.
    case rollingBack = "RollingBack"
}

/// A rollout that is being taken back to stable — a promise kept across passes and restarts (Argo Rollouts' abort
/// flag): from the moment it is decided, the target says "rolling back", the rollback is retried until it
/// succeeds, and nothing moves the rollout forward.
public struct RollbackState: Sendable, Codable, Hashable {
    public enum Cause: String, Sendable, Codable {
        /// A step or an analysis failed (or the progress deadline passed).
        case failure
        /// `tide abort`.
        case abort
        /// A newer desired state pre-empts the rollout: once stable serves, the new one starts.
        case preemption
    }

    public var cause: Cause
    /// Why, in words (the failure, who aborted, what pre-empts it).
    public var reason: String
    public var at: Date
    /// Who asked (`tide abort`); nil when Tide decided.
    public var actor: Actor?
    /// Attempts that failed so far.
    public var attempts: Int = 0
    /// When the next attempt is due (nil: now).
    public var nextAttemptAt: Date?
    public var lastError: String?
    /// Whether git is written back once stable serves (`writeBack: revert`, and every abort).
    public var writeBack: Bool

    public init(cause: Cause, reason: String, at: Date, actor: Actor? = nil, writeBack: Bool) {
        self.cause = cause
        self.reason = reason
        self.at = at
        self.actor = actor
        self.writeBack = writeBack
    }
}

/// The measurements of an analysis step so far.
public struct AnalysisRun: Sendable, Codable, Hashable {
    public struct Measurement: Sendable, Codable, Hashable {
        public enum Phase: String, Sendable, Codable {
            case success, failure, inconclusive, error
        }

        public var metric: String
        public var round: Int
        public var at: Date
        public var phase: Phase
        public var value: JSONValue?
        public var message: String?

        public init(metric: String, round: Int, at: Date, phase: Phase, value: JSONValue?, message: String?) {
            self.metric = metric
            self.round = round
            self.at = at
            self.phase = phase
            self.value = value
            self.message = message
        }
    }

    public var name: String
    /// Which step of the rollout it belongs to.
    public var step: Int
    public var startedAt: Date
    /// Rounds taken, errors included (their timing).
    public var rounds: Int = 0
    /// Rounds that count toward the analysis' `count`: rounds without a measurement error (nil for runs from
    /// before errors stopped counting: `rounds` then).
    public var counted: Int?
    /// Rounds in a row in which every deciding metric succeeded (`consecutiveSuccessLimit`).
    public var consecutiveSuccesses: Int?
    public var consecutiveErrors: Int = 0
    public var measurements: [Measurement] = []
    /// A judged analysis: the judge's report (score, verdict, each metric's class and figures).
    public var judgement: JSONValue?

    public init(name: String, step: Int, startedAt: Date) {
        self.name = name
        self.step = step
        self.startedAt = startedAt
    }

    public func count(_ phase: Measurement.Phase) -> Int { measurements.filter { $0.phase == phase }.count }
}

/// A deployment under way: what is being rolled out and how far it got.
public struct Rollout: Sendable, Codable, Hashable {
    public var version: String
    public var config: JSONValue
    public var configDigest: String
    public var revision: ObjectID
    public var previousVersion: String?
    public var classification: ChangeClass
    /// Why it was classified so ("reverts 1a2b3c4d5e6f", "1.4.2 ran here before").
    public var reason: String?
    /// The commit a revert in this change undoes, when the change is a revert.
    public var revertedCommit: ObjectID?
    /// Index of the next step to run.
    public var step: Int
    /// Share of traffic the candidate has (canary).
    public var weight: Int = 0
    /// The Migrations the candidate needs (expanded before it started).
    public var migrations: [String] = []
    /// The stable side's config and the revision it came from, when it started: a rollback (automatic, or
    /// `tide abort`) gives the executor these, not the candidate's.
    public var stableConfig: JSONValue?
    public var stableRevision: ObjectID?
    /// The stable side's config digest (nil for a first deployment).
    public var stableConfigDigest: String?
    /// Identifies this attempt of the rollout in its action ids (nil for rollouts started before attempts were
    /// kept): a retry of the same version is a new attempt with new ids.
    public var attempt: String?
    /// The steps this rollout runs, frozen when it started: when the desired strategy's steps differ (by digest),
    /// the rollout is pre-empted like one for an older version (Argo Rollouts' step hash).
    public var plan: RolloutPlan?
    /// The steps' digest of a rollout started before plans were kept.
    public var stepsDigest: String?
    /// When the rollout goes on by itself (a timed pause ends, an analysis measures next); nil while it waits
    /// for a person.
    public var nextDue: Date?
    /// The current step failed transiently this many times (after its in-pass retries); nil once it succeeds.
    public var transientFailures: Int?
    /// When the current step first failed transiently: the progress deadline counts from here.
    public var stalledSince: Date?
    /// When the current step is tried again after a transient failure, and why it waits.
    public var retryAt: Date?
    public var retryReason: String?
    /// Held by `tide pause` until `tide resume`.
    public var paused: Bool = false
    /// Who paused it with `tide pause` (not a pause for a person after an inconclusive analysis): while set, newer
    /// commits wait instead of pre-empting it.
    public var heldBy: String?
    /// `tide promote --full`: skip the remaining weights and pauses.
    public var full: Bool = false
    /// The analysis step under way, with its measurements.
    public var analysis: AnalysisRun?
    /// The canary's background analysis, which runs beside the steps for the whole rollout.
    public var background: AnalysisRun?
    public var startedAt: Date
    public var stepStartedAt: Date
    /// What the candidate carries besides version and config (nil for rollouts started before it was kept): it
    /// becomes the target's `release` when the rollout completes.
    public var baseConfigDigest: String?
    public var executorDigest: String?
    /// The stable side's release when the rollout started: a rollback brings it back.
    public var stableRelease: Release?
    /// Set once the rollout is being taken back to stable (see `RollbackState`).
    public var rollingBack: RollbackState?

    public init(
        version: String, config: JSONValue, configDigest: String, revision: ObjectID, previousVersion: String?,
        classification: ChangeClass, reason: String?, revertedCommit: ObjectID? = nil, step: Int = 0, startedAt: Date
    ) {
        self.revertedCommit = revertedCommit
        self.version = version
        self.config = config
        self.configDigest = configDigest
        self.revision = revision
        self.previousVersion = previousVersion
        self.classification = classification
        self.reason = reason
        self.step = step
        self.startedAt = startedAt
        self.stepStartedAt = startedAt
    }
}

/// What a deployment carries besides its version and config digest, and when it finished healthy: the
/// `requires` gate of a downstream environment is met only by the same version with the same base config and
/// executor, and its `bake` counts from `deployedAt`.
public struct Release: Sendable, Codable, Hashable {
    /// The digest of the service's own `spec.config` (before the environment's override).
    public var baseConfigDigest: String
    /// The executor's digest (what it runs and the revision files its programs come from).
    public var executorDigest: String
    /// When the deployment that brought it finished healthy.
    public var deployedAt: Date
    /// The config it runs with (the target's resolved config), kept so that a rollback to it never has to read
    /// it back from git — where the revision may have been rewritten away. Nil for releases adopted from
    /// desired state.
    public var config: JSONValue?

    public init(baseConfigDigest: String, executorDigest: String, deployedAt: Date, config: JSONValue? = nil) {
        self.baseConfigDigest = baseConfigDigest
        self.executorDigest = executorDigest
        self.deployedAt = deployedAt
        self.config = config
    }
}

/// A desired state that failed for a target; it is not retried until the desired state changes.
public struct FailedAttempt: Sendable, Codable, Hashable {
    public var version: String
    public var configDigest: String
    /// The executor it failed with (nil for failures recorded before it was kept): a fix to the executor's
    /// script is a new attempt.
    public var executorDigest: String?
    public var revision: ObjectID
    public var message: String
    public var at: Date
    /// The write-back to git its rollback still owes (nil: none, or done): recorded with the rollback's outcome,
    /// before anything is pushed, so that a crash mid-push is settled at the next start rather than forgotten.
    public var writeBack: OwedWriteBack?

    public init(version: String, configDigest: String, revision: ObjectID, message: String, at: Date) {
        self.version = version
        self.configDigest = configDigest
        self.revision = revision
        self.message = message
        self.at = at
    }
}

/// A rollback's write-back to git (a revert or a pin) that is not recorded as done yet. Once the commit is made,
/// and before it is pushed, `commit` and `parent` say which it is: at the next start, a remote branch that holds
/// `commit` means the push went through (it is recorded then); otherwise it is written again.
public struct OwedWriteBack: Sendable, Codable, Hashable {
    /// Why the rollout was rolled back (for the commit's message).
    public var reason: String
    /// The manifest file that defines the target.
    public var file: String
    public var commit: ObjectID?
    public var parent: ObjectID?
    /// "revert" or "pin", and what the commit did.
    public var kind: String?
    public var words: String?

    public init(reason: String, file: String) {
        self.reason = reason
        self.file = file
    }
}

/// What Tide recorded about one target.
public struct LiveTarget: Sendable, Codable, Hashable {
    public var id: TargetID
    public var executor: String
    public var phase: TargetPhase
    /// The version that runs, once one has been deployed.
    public var version: String?
    public var configDigest: String?
    /// The revision whose desired state `version` and `configDigest` came from.
    public var revision: ObjectID?
    public var rollout: Rollout?
    public var failed: FailedAttempt?
    /// Why the desired version has not started here yet (a gate: approval, window, bake …), if it is waiting.
    public var waiting: String?
    /// What holds it: gates, its database, a refusal, or the error the last pass met.
    public var waitingOn: [WaitReason] = []
    /// The Migrations the running version needs, and when it finished rolling out (contract waits on it).
    public var migrations: [String] = []
    public var migratedAt: Date?
    /// What this target's versions did with migrations over time — which databases they used, and how they
    /// stopped needing a migration — so downs and contracts can be decided conservatively.
    public var migrationUse = MigrationUse()
    /// What the running version carries besides its config, and since when (nil: recorded before it was kept,
    /// adopted from desired state at the next pass that finds the target in sync).
    public var release: Release?
    /// A candidate that an abort or a failure took traffic from, still running (`abortScaleDownDelay`) until its
    /// `scale-down`.
    public var keptCandidate: KeptCandidate?
    public var updatedAt: Date

    public init(
        id: TargetID, executor: String, phase: TargetPhase, version: String? = nil, configDigest: String? = nil,
        revision: ObjectID? = nil, rollout: Rollout? = nil, failed: FailedAttempt? = nil, waiting: String? = nil,
        waitingOn: [WaitReason] = [], migrations: [String] = [], migratedAt: Date? = nil,
        migrationUse: MigrationUse = MigrationUse(), release: Release? = nil, keptCandidate: KeptCandidate? = nil,
        updatedAt: Date
    ) {
        self.release = release
        self.keptCandidate = keptCandidate
        self.migrationUse = migrationUse
        self.migrations = migrations
        self.migratedAt = migratedAt
        self.waiting = waiting
        self.waitingOn = waitingOn
        self.id = id
        self.executor = executor
        self.phase = phase
        self.version = version
        self.configDigest = configDigest
        self.revision = revision
        self.rollout = rollout
        self.failed = failed
        self.updatedAt = updatedAt
    }
}

/// A candidate that an abort or a failure took the traffic from and that keeps running for a while (Argo Rollouts'
/// `abortScaleDownDelay`), so it can be looked at: Tide tells the executor `scale-down` (with `previousVersion`
/// the candidate) when the delay ends, before the target's next rollout, or before its removal.
public struct KeptCandidate: Sendable, Codable, Hashable {
    public var version: String
    public var configDigest: String
    public var config: JSONValue
    public var revision: ObjectID
    /// The rollout's attempt, for the scale-down's action id.
    public var attempt: String?
    public var strategy: StrategyType
    /// When the scale-down is due; nil: kept until the target's next rollout (`abortScaleDownDelay: 0`).
    public var scaleDownAt: Date?
    /// Scale-downs that failed so far, and the last error.
    public var attempts: Int = 0
    public var lastError: String?

    public init(
        version: String, configDigest: String, config: JSONValue, revision: ObjectID, attempt: String?,
        strategy: StrategyType, scaleDownAt: Date?
    ) {
        self.version = version
        self.configDigest = configDigest
        self.config = config
        self.revision = revision
        self.attempt = attempt
        self.strategy = strategy
        self.scaleDownAt = scaleDownAt
    }
}

/// What a target's versions did with migrations, kept across deployments.
public struct MigrationUse: Sendable, Codable, Hashable {
    /// sql executors whose databases a version of this target used (its migrations' executors and the service's
    /// `databases`). Kept when a later version needs no migration there: the app still reads that database.
    public var databases: [String] = []
    /// For each of those executors, a revision that defines it (hex): a revert can remove an executor from
    /// desired state while its database still holds what a version applied.
    public var databaseRevisions: [String: String]?
    /// Migrations the target stopped needing through an explicit rollback that finished healthy: the only way a
    /// migration's `down` can become due by itself.
    public var released: [String] = []
    /// Migrations the target stopped needing any other way (a newer version, a rename): never undone
    /// automatically, only reported — `tide migrations down` is for a person who decides.
    public var abandoned: [String] = []
    /// Transient database errors in a row before this target's rollout (the retry backs off with them).
    public var retries: Int = 0
    /// When the next attempt is due after one.
    public var retryAt: Date?

    public init(databases: [String] = [], released: [String] = [], abandoned: [String] = []) {
        self.databases = databases
        self.released = released
        self.abandoned = abandoned
    }

    public var isEmpty: Bool { databases.isEmpty && released.isEmpty && abandoned.isEmpty && retries == 0 }
}

/// A commit Tide wrote that the remote config repo has not taken yet (it could not be reached): `tide rollback`
/// while git is down rolls back from the local mirror, and the commit is published when the remote answers —
/// rebuilt on the remote's head if someone pushed meanwhile, never forced.
public struct UnpublishedCommit: Sendable, Codable, Hashable {
    public var commit: ObjectID
    public var parent: ObjectID
    /// What it does, to rebuild it: take `target` from `failedVersion` (config `failedDigest`) back to
    /// `stableVersion` (config `stableDigest`), reverting `reverting` when one revert can.
    public var target: TargetID
    public var file: String
    public var failedVersion: String
    public var failedDigest: String
    public var stableVersion: String
    public var stableDigest: String?
    public var reverting: [ObjectID]
    public var note: String
    /// Who asked, for the rebuilt commit's `Tide-Actor:` trailer.
    public var actor: Actor
    public var what: String
    public var at: Date
    /// Why the last push did not go through.
    public var why: String

    public init(
        commit: ObjectID, parent: ObjectID, target: TargetID, file: String, failedVersion: String,
        failedDigest: String, stableVersion: String, stableDigest: String?, reverting: [ObjectID], note: String,
        actor: Actor, what: String, at: Date, why: String
    ) {
        self.commit = commit
        self.parent = parent
        self.target = target
        self.file = file
        self.failedVersion = failedVersion
        self.failedDigest = failedDigest
        self.stableVersion = stableVersion
        self.stableDigest = stableDigest
        self.reverting = reverting
        self.note = note
        self.actor = actor
        self.what = what
        self.at = at
        self.why = why
    }
}

/// Which revision of the config repo is applied, and the last one rejected.
public struct RepositoryStatus: Sendable, Codable, Hashable {
    public var lastGoodRevision: ObjectID?
    /// The branch `lastGoodRevision` was applied from (nil: recorded before branches were kept). A head of
    /// another branch (`--branch hotfix/…` and back) is not checked for descent from it.
    public var lastGoodBranch: String?
    public var lastGoodAt: Date?
    public var rejectedRevision: ObjectID?
    public var rejectedAt: Date?
    public var rejection: [Diagnostic]
    /// Commits Tide wrote that the remote has not taken yet (nil: none).
    public var unpublished: [UnpublishedCommit]?
    /// Commits Tide wrote, never published, and wrote again on a head someone moved meanwhile: each (by hex) with
    /// the parent it was built on. A head that descends from that parent is not a history rewrite (the last few
    /// are kept).
    public var rebuilt: [String: ObjectID]?

    public init(
        lastGoodRevision: ObjectID? = nil, lastGoodAt: Date? = nil, rejectedRevision: ObjectID? = nil,
        rejectedAt: Date? = nil, rejection: [Diagnostic] = []
    ) {
        self.lastGoodRevision = lastGoodRevision
        self.lastGoodAt = lastGoodAt
        self.rejectedRevision = rejectedRevision
        self.rejectedAt = rejectedAt
        self.rejection = rejection
    }
}

/// One executor call, recorded before it starts and after it ends, keyed by its idempotency key.
public struct ActionRecord: Sendable, Codable, Hashable {
    public enum Status: String, Sendable, Codable {
        case started, succeeded, failed
    }

    public var id: String
    public var target: TargetID
    public var action: String
    public var status: Status
    public var startedAt: Date
    public var finishedAt: Date?
    public var message: String?

    public init(
        id: String, target: TargetID, action: String, status: Status, startedAt: Date, finishedAt: Date? = nil,
        message: String? = nil
    ) {
        self.id = id
        self.target = target
        self.action = action
        self.status = status
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.message = message
    }
}

extension Array where Element == LiveTarget {
    /// The targets by id (the first of two with one id), built once per pass and handed on: a pass over 30,000
    /// targets must not build it again for each of its parts.
    public var byID: [TargetID: LiveTarget] {
        var byID: [TargetID: LiveTarget] = [:]
        byID.reserveCapacity(count)
        for target in self where byID[target.id] == nil { byID[target.id] = target }
        return byID
    }
}
