import Foundation
import Hummingbird
public import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
public import TideEngine
import TideExecutors
public import TideState

/// `tide run`: the pass loop and the HTTP server (health, readiness, metrics, webhooks) in one service group.
///
/// On SIGTERM or SIGINT the server stops taking requests first, then the loop lets the pass under way finish —
/// its executor actions get `shutdownTimeout` — after which they are stopped (their process groups killed) and
/// their steps stay recorded as started, so the next start resumes them under the same action ids. A second
/// signal exits at once (status 1); the state, written in transactions, stays consistent either way.
public final class Daemon: Sendable {
    let configuration: DaemonConfiguration
    let loop: PassLoop
    /// The HTTP routes, built when the server starts (a router is not Sendable).
    let makeRouter: @Sendable () -> Router<TideRequestContext>
    let logger: Logger

    /// `makeReconciler` opens the config repo for a branch (nil: the one `--branch` or HEAD names).
    public init(
        configuration: DaemonConfiguration, source: RemoteSource?, store: any StateStore,
        channel: (any OperatorChannel)? = nil, logger: Logger, metrics: DaemonMetrics = DaemonMetrics(),
        makeReconciler: @escaping @Sendable (_ branch: String?) throws -> Reconciler
    ) {
        self.configuration = configuration
        self.logger = logger
        let actionLogger = logger
        let loop = PassLoop(
            configuration: configuration, source: source, store: store, channel: channel, metrics: metrics,
            logger: logger,
            makeReconciler: { branch in
                try makeReconciler(branch).instrumented(metrics: metrics, logger: actionLogger)
            })
        self.loop = loop
        self.makeRouter = {
            buildRouter(
                loop: loop, source: source, store: store, metrics: metrics, configuration: configuration,
                logger: logger)
        }
    }

    /// Runs until SIGTERM or SIGINT. `onListening` gets the port bound (useful with port 0).
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let logger = logger
        let host = configuration.host
        let limits = ConnectionLimits()
        let app = Application(
            router: makeRouter(),
            server: .http1(
                configuration: .init(additionalChannelHandlers: [limits.handler()], idleTimeout: .seconds(15))),
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: "tide"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? -1
                logger.info("listening", metadata: ["address": "\(host):\(port)"])
                await onListening(port)
            },
            logger: logger.withLevel(.warning))
        var group = ServiceGroupConfiguration(
            services: [
                .init(service: loop, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "pass-loop"),
                .init(service: app, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "http"),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger.withLevel(.warning))
        group.maximumGracefulShutdownDuration = .milliseconds(Int64(configuration.shutdownTimeout * 1000))
        let secondSignal = SecondSignal(logger: logger)
        defer { withExtendedLifetime(secondSignal) {} }
        do {
            try await ServiceGroup(configuration: group).run()
        } catch is CancellationError {
            // The shutdown timeout ran out: the actions under way were stopped and stay recorded as started.
        } catch {
            // A service stopped the group (the state file was replaced): its error is tide run's exit.
            BoundedProcess.killAll()
            throw error
        }
        // A fetch or push still waiting on its server runs in a session of its own: it goes with Tide.
        BoundedProcess.killAll()
        logger.info("stopped")
    }
}

extension Logger {
    func withLevel(_ level: Logger.Level) -> Logger {
        var copy = self
        copy.logLevel = max(level, logLevel)
        return copy
    }
}

extension Reconciler {
    /// The same reconciler with every executor action counted, timed and logged.
    func instrumented(metrics: DaemonMetrics, logger: Logger) -> Reconciler {
        var instrumented = dependencies
        instrumented.executors = InstrumentedExecutorFactory(base: executors, metrics: metrics, logger: logger)
        return Reconciler(instrumented)
    }
}

/// Counts SIGTERM and SIGINT beside the service group (which handles the first): the second exits at once.
private final class SecondSignal: @unchecked Sendable {  // the sources are only cancelled in deinit
    private let sources: [any DispatchSourceSignal]

    init(logger: Logger) {
        let count = Mutex(0)
        sources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let seen = count.withLock { value in
                    value += 1
                    return value
                }
                if seen >= 2 {
                    logger.warning("second signal: exiting at once")
                    // Executors run in sessions of their own: they go too, rather than run on beside the next
                    // start, which resumes their steps.
                    BoundedProcess.killAll()
                    _exit(1)
                }
            }
            source.resume()
            return source
        }
    }

    deinit {
        sources.forEach { $0.cancel() }
    }
}
