import Foundation
import Hummingbird
import TideDocuments
import TideState

/// `/healthz` (the process answers) and `/readyz` (it can do its job: the state store answers, a revision is
/// applied, passes run — not two errors in a row — and, for a remote repo, a fetch has succeeded once). A head held
/// back (rejected, unsigned, no longer verifying) is said even when ready: which revision is held, and why.
struct HealthRoutes: Sendable {
    let loop: PassLoop
    let source: RemoteSource?
    let store: any StateStore

    /// Passes in a row that could not run before the service says it is not ready (one may be a blip).
    static let passErrorsBeforeUnready = 2

    func collection() -> RouteCollection<TideRequestContext> {
        let routes = RouteCollection(context: TideRequestContext.self)
        routes.get("/healthz") { _, _ in "ok\n" }
        routes.get("/readyz") { _, _ in await readiness() }
        return routes
    }

    /// The body says what is missing, and the last fetch error even when ready.
    func readiness() async -> Response {
        var problems: [String] = []
        var notes: [String] = []
        do {
            _ = try await store.lastEventID()
        } catch {
            problems.append("the state store does not answer: \(error)")
        }
        if let source {
            let status = await source.status
            if !loop.health.withLock({ $0.fetchedOnce }) {
                problems.append(
                    "the config repo was never fetched" + (status.lastFetchError.map { ": \($0)" } ?? ""))
            } else if let error = status.lastFetchError {
                notes.append("last fetch failed at \(Document.iso(status.lastFetchAt)): \(error)")
            }
        }
        let health = loop.health.withLock { $0 }
        if health.nothingApplied, let rejection = health.rejection {
            problems.append("nothing is applied: \(rejection); no earlier revision is good or still verifies")
        } else if health.revision == nil {
            problems.append("no revision loaded yet" + (health.lastPassError.map { ": \($0)" } ?? ""))
        } else if let rejection = health.rejection {
            notes.append("holding \(health.revision?.short ?? "-"): \(rejection)")
        }
        if health.consecutivePassErrors >= Self.passErrorsBeforeUnready, let error = health.lastPassError {
            problems.append("the last \(health.consecutivePassErrors) passes could not run: \(error)")
        }
        if problems.isEmpty {
            return textResponse(
                .ok, (["ready: revision \(health.revision?.short ?? "-")"] + notes).joined(separator: "\n"))
        }
        return textResponse(.serviceUnavailable, (["not ready"] + problems + notes).joined(separator: "\n"))
    }
}
