import ArgumentParser
import Foundation
import Logging
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideService

/// `tide run`: the reconciler as a service — polls (or is told by a webhook) and reconciles, serving health,
/// readiness, metrics and webhooks on one listener, until SIGTERM.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run as a service: reconcile on every poll, push webhook and operator command; serve /healthz, "
            + "/readyz, /metrics and /hooks/{github,gitlab,generic}.",
        discussion: """
            Every option also comes from the environment when not given: TIDE_REPO, TIDE_BRANCH, TIDE_PATH, \
            TIDE_STATE, TIDE_LISTEN, TIDE_INTERVAL, TIDE_WEBHOOK_SECRET_FILE, TIDE_CONCURRENCY, \
            TIDE_SHUTDOWN_TIMEOUT, TIDE_LOG_FORMAT, TIDE_LOCK_TIMEOUT, TIDE_CACHE_DIR, TIDE_FETCH_TIMEOUT, \
            TIDE_GIT_USERNAME, TIDE_GIT_PASSWORD(_FILE), TIDE_SSH_KEY, TIDE_KNOWN_HOSTS.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(
        name: .long,
        help: ArgumentHelp("Where to serve HTTP ($TIDE_LISTEN; default 127.0.0.1:7070).", valueName: "host:port"))
    var listen: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Time between polls, ±10 % ($TIDE_INTERVAL; default 1m).", valueName: "duration"))
    var interval: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The webhook secret: one line, or 'PROVIDER: SECRET' lines ($TIDE_WEBHOOK_SECRET_FILE; without it the "
                + "webhooks answer 404).", valueName: "file"))
    var webhookSecretFile: String?

    @Option(name: .long, help: "Targets a pass runs at once ($TIDE_CONCURRENCY; default 16).")
    var concurrency: Int?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "After SIGTERM, how long executor actions under way may take before they are stopped "
                + "($TIDE_SHUTDOWN_TIMEOUT; default 30s).", valueName: "duration"))
    var shutdownTimeout: String?

    @Option(name: .long, help: ArgumentHelp("text or json ($TIDE_LOG_FORMAT; default text).", valueName: "format"))
    var logFormat: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "How long a pass waits for another tide holding the state lock ($TIDE_LOCK_TIMEOUT; default 60s).",
            valueName: "duration"))
    var lockTimeout: String?

    func run() async throws {
        let settings = try resolve()
        let logger = settings.logFormat.makeLogger()
        let global = self.global
        let location = try global.location
        let store = try global.openStore(for: try? location.isLocal ? global.openRepository() : nil)
        var source: RemoteSource?
        if case .remote(let url) = location {
            source = try await global.remoteSource(url, store: store, maximumBackoff: settings.daemon.interval)
        }
        let publisher = source
        let concurrency = settings.concurrency
        let daemon = Daemon(
            configuration: settings.daemon, source: source, store: store, channel: store, logger: logger,
            makeReconciler: { branch in
                try global.makeReconciler(
                    try global.openRepository(), branch: branch, store: store, concurrency: concurrency,
                    publisher: publisher)
            })
        logger.info(
            "starting",
            metadata: [
                "repo": "\(location)", "state": "\(global.statePath(for: nil))",
                "interval": "\(ManifestDuration.format(settings.daemon.interval))",
                "webhooks": "\(settings.daemon.webhookSecrets == nil ? "off" : "on")",
            ])
        try await daemon.run()
    }

    struct Settings {
        var daemon: DaemonConfiguration
        var concurrency: Int
        var logFormat: LogFormat
    }

    /// Flags, then `TIDE_*` variables, then defaults; every value checked.
    func resolve() throws -> Settings {
        var daemon = DaemonConfiguration(branch: global.trackedBranch)
        let listenText = listen ?? environment("TIDE_LISTEN") ?? "127.0.0.1:7070"
        guard let colon = listenText.lastIndex(of: ":"), let port = Int(listenText[listenText.index(after: colon)...]),
            (0...65535).contains(port), colon > listenText.startIndex
        else {
            throw ValidationError("--listen: give HOST:PORT, like 127.0.0.1:7070 (not '\(listenText)')")
        }
        daemon.host = String(listenText[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        daemon.port = port
        daemon.interval = try duration(interval, "TIDE_INTERVAL", "--interval", default: 60, range: 1...86400)
        daemon.shutdownTimeout = try duration(
            shutdownTimeout, "TIDE_SHUTDOWN_TIMEOUT", "--shutdown-timeout", default: 30, range: 0...3600)
        daemon.lockTimeout = try duration(
            lockTimeout, "TIDE_LOCK_TIMEOUT", "--lock-timeout", default: 60, range: 0...3600)
        if let file = webhookSecretFile ?? environment("TIDE_WEBHOOK_SECRET_FILE") {
            do {
                daemon.webhookSecrets = try WebhookSecrets(file: file)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        let concurrencyText = concurrency.map(String.init) ?? environment("TIDE_CONCURRENCY") ?? "16"
        guard let concurrency = Int(concurrencyText), (1...1024).contains(concurrency) else {
            throw ValidationError("--concurrency: give a number from 1 to 1024 (not '\(concurrencyText)')")
        }
        let formatText = logFormat ?? environment("TIDE_LOG_FORMAT") ?? "text"
        guard let format = LogFormat(rawValue: formatText) else {
            throw ValidationError("--log-format: give text or json (not '\(formatText)')")
        }
        return Settings(daemon: daemon, concurrency: concurrency, logFormat: format)
    }

    private func duration(
        _ flag: String?, _ variable: String, _ name: String, default value: Double, range: ClosedRange<Double>
    ) throws -> Double {
        guard let text = flag ?? environment(variable) else { return value }
        guard let seconds = ManifestDuration.seconds(text), seconds.isFinite, range.contains(seconds) else {
            throw ValidationError(
                "\(name): give a duration from \(ManifestDuration.format(range.lowerBound)) to "
                    + "\(ManifestDuration.format(range.upperBound)), like 30s or 5m (not '\(text)')")
        }
        return seconds
    }
}

extension RepositoryLocation {
    var isLocal: Bool {
        if case .local = self { return true }
        return false
    }
}
