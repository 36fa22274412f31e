import ArgumentParser
import Foundation
import TideDocuments
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideService
import TideState

/// Options every command that reads the config repo or the state shares. Each also comes from the environment
/// (`TIDE_REPO`, `TIDE_BRANCH`, `TIDE_PATH`, `TIDE_STATE`, …) when not given, so Tide runs unchanged as a systemd
/// unit or in a container.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The config repo: a work tree, a bare repository, or a URL (file://, http(s)://, ssh://, git@host:path) "
                + "Tide fetches into a mirror of its own ($TIDE_REPO; default: .).", valueName: "path|url"))
    var repo: String?

    @Option(name: .long, help: "The branch to track ($TIDE_BRANCH; default: the branch HEAD points to).")
    var branch: String?

    @Option(name: .long, help: "The manifest root inside the repo ($TIDE_PATH; default: the repo root).")
    var path: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The state store: an SQLite file path (default: $TIDE_STATE, else tide/state.sqlite in the repo's git "
                + "directory; required for a remote repo).", valueName: "path"))
    var state: String?

    @Option(
        name: .customLong("secret-dir"),
        help: ArgumentHelp(
            "A directory sql executors' password: {file: PATH} may read from; repeat for more ($TIDE_SECRET_DIRS, "
                + "colon-separated; default: none, so no password file is read).", valueName: "dir"))
    var secretDirectories: [String] = []

    @Flag(
        name: .customLong("allow-history-rewrite"),
        help: ArgumentHelp(
            "Apply a head that does not descend from the revision applied last (a force-push, a rewritten "
                + "history); without it such a head is held ($TIDE_ALLOW_HISTORY_REWRITE=1)."))
    var allowHistoryRewriteFlag = false

    var allowHistoryRewrite: Bool {
        allowHistoryRewriteFlag || ["1", "true", "yes"].contains(environment("TIDE_ALLOW_HISTORY_REWRITE") ?? "")
    }

    @OptionGroup var remote: RemoteOptions

    @OptionGroup var signing: SigningOptions

    /// `--secret-dir` and `TIDE_SECRET_DIRS`.
    var allowedSecretDirectories: [String] {
        secretDirectories + (environment("TIDE_SECRET_DIRS") ?? "").split(separator: ":").map(String.init)
    }

    func validate() throws {
        // Echoed in messages and stored with the source's status: an escape sequence would repaint a terminal.
        try refuseControlCharacters(branch ?? environment("TIDE_BRANCH"), option: "--branch")
        for directory in allowedSecretDirectories where directory.isEmpty || directory == "/" {
            throw ValidationError(
                "--secret-dir: '\(directory)' would allow every file; name the directory of the secrets")
        }
        // Process-wide, like the withheld secret variables: every database this command opens reads it.
        SecretFiles.allow(allowedSecretDirectories)
        if let state = resolvedState, state.hasPrefix("postgres://") || state.hasPrefix("postgresql://") {
            throw ValidationError("--state: PostgreSQL state stores are not supported by this version of tide yet")
        }
        if (path ?? environment("TIDE_PATH") ?? "").split(separator: "/").contains("..") {
            throw ValidationError("--path: must stay inside the repository (no '..')")
        }
        do {
            if case .remote = try location {
                guard resolvedState != nil else {
                    throw ValidationError("--state: give the state file (or TIDE_STATE) when --repo is a URL")
                }
                // The only repository this process opens is Tide's own mirror, whoever owns it.
                Repository.trustMirrorOwners()
            }
        } catch let error as RemoteURLError {
            throw ValidationError(error.description)
        }
        try remote.validate()
        try signing.validate(repository: repoArgument)
    }

    var repoArgument: String { repo ?? environment("TIDE_REPO") ?? "." }
    var trackedBranch: String? { branch ?? environment("TIDE_BRANCH") }
    var resolvedState: String? { state ?? environment("TIDE_STATE") }

    var location: RepositoryLocation {
        get throws(RemoteURLError) { try RepositoryLocation(repoArgument) }
    }

    var manifestRoot: String {
        (path ?? environment("TIDE_PATH") ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            .replacingOccurrences(of: "./", with: "")
    }

    /// The config repo as it is now: a local repository, or the mirror of a remote one as last fetched (not
    /// fetched here; `fetchedReconciler` fetches).
    func openRepository() throws -> Repository {
        switch try location {
        case .local(let path):
            do {
                return try Repository.open(at: path)
            } catch {
                // The path as typed may be a URL with a password that did not parse as one: never echoed.
                let why = path.contains("@") ? "not a repository" : "\(error)"
                throw ReportedFailure(
                    message: "tide: error: cannot open config repo '\(DatabaseURL.redacted(path))': \(why)")
            }
        case .remote(let url):
            let mirror = mirrorPath(for: url)
            guard FileManager.default.fileExists(atPath: mirror) else {
                throw ReportedFailure(
                    message: "tide: error: \(url) was never fetched (no mirror at \(mirror)): run tide reconcile, "
                        + "tide plan or tide run first")
            }
            return try Repository.open(at: mirror)
        }
    }

    /// The bare mirror a remote repo is fetched into: under `--cache-dir`, else next to the state file.
    func mirrorPath(for url: RemoteURL) -> String {
        let base = remote.cacheDirectory ?? ((statePath(for: nil) as NSString).deletingLastPathComponent)
        let name = "mirror-" + ObjectID.blobHash(of: Array(url.url.utf8)).short + ".git"
        return (base as NSString).appendingPathComponent(name)
    }

    func statePath(for repository: Repository?) -> String {
        if let state = resolvedState, !state.isEmpty { return state }
        let base = repository?.gitDirectory ?? (repoArgument as NSString).appendingPathComponent(".git")
        return (base as NSString).appendingPathComponent("tide/state.sqlite")
    }

    func openStore(for repository: Repository?) throws -> SQLiteStateStore {
        try SQLiteStateStore(path: statePath(for: repository))
    }

    /// A reconciler on the repository as it is (a remote one as last fetched, publishing nothing).
    func reconciler(concurrency: Int = 16) throws -> Reconciler {
        let repository = try openRepository()
        return try makeReconciler(
            repository, branch: trackedBranch, store: try openStore(for: repository), concurrency: concurrency)
    }

    /// The one place a command's reconciler is made: signing and verification settings go in here.
    func makeReconciler(
        _ repository: Repository, branch: String?, store: any StateStore, concurrency: Int,
        publisher: (any BranchPublisher)? = nil
    ) throws -> Reconciler {
        repository.signer = try signing.signer()
        var dependencies = ReconcilerDependencies(
            repository: repository, branch: branch, root: manifestRoot, store: store,
            executors: executorFactory(repository), concurrency: concurrency, publisher: publisher,
            verification: try signing.verification(), readCheck: readCheck(repository))
        dependencies.allowHistoryRewrite = allowHistoryRewrite
        return Reconciler(dependencies)
    }

    /// New heads are read by a `tide git-check` child first (libgit2 can crash or hang on corrupt objects).
    func readCheck(_ repository: Repository) -> ChildReadCheck {
        ChildReadCheck(
            repository: repository.gitDirectory, executable: tideExecutable(), timeout: remote.fetchTimeoutSeconds)
    }

    /// A reconciler for commands that act on git: a remote repo is fetched first, and the commits Tide writes are
    /// pushed to it. A failed fetch is reported and the last fetched revision used, when there is one.
    ///
    /// `readOnly` (plan): the fetch is not recorded (no fetch status, no `fetch.failed` event: the state is the
    /// service's), and when a live `tide run` holds the state nothing is fetched — its mirror is read as it fetched
    /// it.
    func fetchedReconciler(concurrency: Int = 16, readOnly: Bool = false) async throws -> Reconciler {
        guard case .remote(let url) = try location else { return try reconciler(concurrency: concurrency) }
        let store = try openStore(for: nil)
        if readOnly, let service = try await store.services().first(where: \.isAlive) {
            printError("tide: note: reading the revision \(service.description) fetched last")
            return try reconciler(concurrency: concurrency)
        }
        let source = try await remoteSource(url, store: store, records: !readOnly)
        if case .failed(let why) = await source.fetch(force: true) {
            guard FileManager.default.fileExists(atPath: mirrorPath(for: url)), await source.branch != nil else {
                throw ReportedFailure(message: "tide: error: \(why)")
            }
            printError(
                "tide: warning: \(why); using the revision fetched at \(iso(await source.status.lastFetchSuccessAt))")
        }
        let repository = try Repository.open(at: mirrorPath(for: url))
        return try makeReconciler(
            repository, branch: await source.branch, store: store, concurrency: concurrency, publisher: source)
    }

    func remoteSource(
        _ url: RemoteURL, store: SQLiteStateStore, maximumBackoff: Double = 60, records: Bool = true
    ) async throws -> RemoteSource {
        let mirror = mirrorPath(for: url)
        _ = try Repository.openMirror(at: mirror)
        return await RemoteSource(
            remote: url, mirrorPath: mirror, credentials: try remote.credentials(), branch: trackedBranch,
            timeout: remote.fetchTimeoutSeconds, maximumBackoff: maximumBackoff, executable: tideExecutable(),
            store: store, records: records)
    }

    /// How executors are made: in the fixed working directory, with the revision's files for relative programs.
    func executorFactory(_ repository: Repository) -> DefaultExecutorFactory {
        DefaultExecutorFactory(
            workingDirectory: workingDirectory(repository),
            programs: RevisionFileStore(
                repository: repository, root: manifestRoot,
                directory: (stateDirectory(for: repository) as NSString).appendingPathComponent("revisions")))
    }

    /// The directory of the state file.
    func stateDirectory(for repository: Repository?) -> String {
        (Paths.resolved(statePath(for: repository)) as NSString).deletingLastPathComponent
    }

    /// Where executors run, whoever runs tide and from wherever: the config repo's work tree, else (bare and remote
    /// repos) the state directory — never the directory the command was typed in.
    func workingDirectory(_ repository: Repository) -> String {
        repository.workingDirectory ?? stateDirectory(for: repository)
    }
}

func environment(_ name: String) -> String? {
    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
    return value
}

/// This process's own binary, to run `tide git-remote` children with.
func tideExecutable() -> String {
    if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
    return CommandLine.arguments[0]
}

/// JSON output: sorted keys, ISO 8601 dates, pretty-printed.
func printJSON(_ value: some Encodable) throws {
    print(try Document.json(value))
}

func iso(_ date: Date?) -> String { Document.iso(date) }

/// A plain-text table with left-aligned columns.
func table(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() where index < widths.count {
            widths[index] = max(widths[index], cell.count)
        }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell + String(repeating: " ", count: max(0, widths[index] - cell.count))
        }.joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}
