import Foundation
import Logging
import TideExecutors
import TideManifest

/// Wraps the executors `tide run` uses so every action is counted, timed and logged: one line per action with
/// service, environment, version, action, action id, duration and result (never the request's config, which may
/// hold anything).
struct InstrumentedExecutorFactory: ExecutorFactory {
    let base: any ExecutorFactory
    let metrics: DaemonMetrics
    let logger: Logger

    func makeExecutor(for manifest: ExecutorManifest) throws -> any Executor {
        try makeExecutor(for: manifest, revision: nil)
    }

    func makeExecutor(for manifest: ExecutorManifest, revision: String?) throws -> any Executor {
        InstrumentedExecutor(
            base: try base.makeExecutor(for: manifest, revision: revision), metrics: metrics, logger: logger)
    }

    func openDatabase(_ manifest: ExecutorManifest, environment: String) async throws -> any MigrationDatabase {
        try await base.openDatabase(manifest, environment: environment)
    }
}

struct InstrumentedExecutor: Executor {
    let base: any Executor
    let metrics: DaemonMetrics
    let logger: Logger

    func perform(_ request: ActionRequest) async -> ActionResult {
        let start = ContinuousClock.now
        let result = await base.perform(request)
        let elapsed = ContinuousClock.now - start
        let outcome = Task.isCancelled ? "interrupted" : result.succeeded ? "succeeded" : "failed"
        metrics.action(request.action.rawValue, result: outcome, duration: elapsed)
        var metadata: Logger.Metadata = [
            "service": "\(request.service)", "environment": "\(request.environment)",
            "version": "\(request.version)", "action": "\(request.action.rawValue)",
            "action_id": "\(request.actionID)",
            "duration":
                "\(String(format: "%.3f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))",
            "result": "\(outcome)",
        ]
        if !result.succeeded && outcome != "interrupted" { metadata["error"] = "\(result.summary)" }
        logger.log(level: result.succeeded ? .info : .warning, "action", metadata: metadata)
        return result
    }
}
