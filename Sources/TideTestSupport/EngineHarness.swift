public import Foundation
public import TideEngine
public import TideExecutors
import TideGit
import TideManifest
public import TideState

/// Where an ``EngineHarness`` keeps live state and events: `.inMemory` or `.sqliteFile`.
public struct HarnessStore<Store: StateStore> {
    let make: () throws -> (store: Store, directory: TemporaryDirectory?)
}

extension HarnessStore where Store == InMemoryStateStore {
    /// An ``InMemoryStateStore``: nothing on disk, and reading it cannot fail.
    public static var inMemory: Self { Self { (InMemoryStateStore(), nil) } }
}

extension HarnessStore where Store == SQLiteStateStore {
    /// A real SQLite state file, as `tide` keeps one, in a temporary directory that lives as long as the harness.
    public static var sqliteFile: Self {
        Self {
            let directory = try TemporaryDirectory("tide-state")
            return (try SQLiteStateStore(path: directory.appending("state.sqlite")), directory)
        }
    }
}

/// One reconciler over a real git repository (a ``GitFixture``), with a ``RecordingExecutor``, a state store and
/// a ``TestClock``, driven pass by pass: what the engine, gate and DORA suites build their tests on.
public struct EngineHarness<Store: StateStore>: Sendable {
    public let fixture: GitFixture
    /// Records every action (cleared at the start of each pass) and answers from its script.
    public let executor: RecordingExecutor
    public let store: Store
    public let clock: TestClock
    public let reconciler: Reconciler
    /// How far ``pass()`` moves the clock before it reconciles.
    public let step: TimeInterval
    /// Holds a `.sqliteFile` store's file for as long as the harness lives.
    private let directory: TemporaryDirectory?

    /// - Parameters:
    ///   - store: `.inMemory`, or `.sqliteFile` for a real state file.
    ///   - files: the repository's first files, path to contents.
    ///   - message: the message of the commit of `files`; nil leaves them written but not committed, for the
    ///     test's own first commit to carry them (at the date it chooses).
    ///   - clock: the clock: one made with the start time the test needs, or another harness's, to share it.
    ///   - step: how far each ``pass()`` moves the clock.
    ///   - executor: the recording executor: a new one, or another harness's, to share it.
    ///   - executors: what the reconciler runs actions through, when it is not `executor`.
    public init(
        store: HarnessStore<Store>, files: [String: String], commit message: String? = "initial",
        clock: TestClock = TestClock(), step: TimeInterval = 60, executor: RecordingExecutor = RecordingExecutor(),
        executors: (any ExecutorFactory)? = nil
    ) throws {
        fixture = try GitFixture()
        if let message {
            try fixture.commit(message, files: files)
        } else {
            for (path, contents) in files { try fixture.write(path, contents) }
        }
        let made = try store.make()
        self.store = made.store
        directory = made.directory
        self.clock = clock
        self.step = step
        self.executor = executor
        reconciler = Reconciler(
            ReconcilerDependencies(
                repository: try Repository.open(at: fixture.repoPath), store: self.store,
                executors: executors ?? executor, clock: clock))
    }

    /// Moves the clock on by ``step`` and runs one pass.
    @discardableResult
    public func pass() async throws -> ReconcileReport {
        clock.advance(by: step)
        return try await reconcile()
    }

    /// Sets the clock to `date` and runs one pass.
    @discardableResult
    public func pass(at date: Date) async throws -> ReconcileReport {
        clock.set(date)
        return try await reconcile()
    }

    private func reconcile() async throws -> ReconcileReport {
        executor.reset()
        return try await reconciler.reconcile(lockTimeout: 1)
    }

    /// `"deploy payments@prod 2.0.0"` for each action of the last pass, in order.
    public func calls() -> [String] {
        executor.requests.map { "\($0.action.rawValue) \($0.service)@\($0.environment) \($0.version)" }
    }

    /// `"set-weight 2.1.0 20"` for each action of the last pass on `service`, in order.
    public func calls(of service: String) -> [String] {
        executor.requests.filter { $0.service == service }.map { "\($0.action.rawValue) \($0.version) \($0.weight)" }
    }

    /// Another reconciler on this harness's clock, otherwise like ``reconciler`` but for what is given: the
    /// repository at `path` (a moved copy, or the same one through a handle of its own), `--branch`, another
    /// store or executors (another install), another concurrency, history rewrites allowed.
    public func makeReconciler(
        at path: String? = nil, branch: String? = nil, store: (any StateStore)? = nil,
        executors: (any ExecutorFactory)? = nil, concurrency: Int? = nil, allowHistoryRewrite: Bool? = nil
    ) throws -> Reconciler {
        var dependencies = reconciler.dependencies
        if let allowHistoryRewrite { dependencies.allowHistoryRewrite = allowHistoryRewrite }
        if let path { dependencies.repository = try Repository.open(at: path) }
        if let branch { dependencies.branch = branch }
        if let store { dependencies.store = store }
        if let executors { dependencies.executors = executors }
        if let concurrency { dependencies.concurrency = concurrency }
        return Reconciler(dependencies)
    }
}

extension EngineHarness where Store == InMemoryStateStore {
    /// `service`@`environment` as the store has it now.
    public func live(_ service: String, _ environment: String = "prod") async -> LiveTarget? {
        await store.liveTarget(TargetID(service: service, environment: environment))
    }
}

/// The manifest of a `command` executor called `name` that runs `/bin/true`. Under an ``EngineHarness`` the
/// recording executor answers for it, so the command never runs.
public func commandExecutorManifest(_ name: String) -> String {
    """
    apiVersion: tide/v1
    kind: Executor
    metadata: {name: \(name)}
    spec: {type: command, command: [/bin/true]}

    """
}
