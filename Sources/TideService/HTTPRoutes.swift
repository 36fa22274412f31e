import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TideState

/// The request context of Tide's HTTP server. Later routes (the dashboard, the API for people) add what they need
/// here — an authenticated identity, say — and register on the same router.
struct TideRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }
}

/// The routes of `tide run`: `/healthz`, `/readyz`, `/metrics` and the webhooks (`/hooks/PROVIDER`).
final class HTTPRoutes: Sendable {
    let loop: PassLoop
    let source: RemoteSource?
    let store: any StateStore
    let metrics: DaemonMetrics
    let configuration: DaemonConfiguration
    let logger: Logger
    let deliveries = Mutex(DeliveryLog())

    init(
        loop: PassLoop, source: RemoteSource?, store: any StateStore, metrics: DaemonMetrics,
        configuration: DaemonConfiguration, logger: Logger
    ) {
        self.loop = loop
        self.source = source
        self.store = store
        self.metrics = metrics
        self.configuration = configuration
        self.logger = logger
    }

    func router() -> Router<TideRequestContext> {
        let router = Router(context: TideRequestContext.self)
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ in await self.readiness() }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string: await self.metrics.exposition(
                            store: self.store, health: self.loop.health.withLock { $0 },
                            desired: self.loop.currentDesired()))))
        }
        for provider in WebhookProvider.allCases {
            router.post("/hooks/\(provider.rawValue)") { request, _ in
                await self.webhook(provider, request)
            }
        }
        return router
    }

    private func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: body.hasSuffix("\n") ? body : body + "\n")))
    }

    /// Ready: the state store answers, a revision is loaded, and (remote repos) a fetch has succeeded once. The
    /// body says what is missing, and the last fetch error even when ready.
    private func readiness() async -> Response {
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
                notes.append("last fetch failed at \(iso(status.lastFetchAt)): \(error)")
            }
        }
        let health = loop.health.withLock { $0 }
        if health.revision == nil {
            problems.append("no revision loaded yet" + (health.lastPassError.map { ": \($0)" } ?? ""))
        }
        if problems.isEmpty {
            return text(.ok, (["ready: revision \(health.revision?.short ?? "-")"] + notes).joined(separator: "\n"))
        }
        return text(.serviceUnavailable, (["not ready"] + problems + notes).joined(separator: "\n"))
    }

    private func webhook(_ provider: WebhookProvider, _ request: Request) async -> Response {
        let (status, message) = await receive(provider, request)
        metrics.webhook(provider: provider.rawValue, result: "\(status.code)")
        let refusal: String? =
            switch status.code {
            case 401: "unauthorized"
            case 400: "malformed"
            case 413: "too-large"
            default: message.contains("was seen before") ? "replayed" : nil
            }
        if let refusal { metrics.webhookRefused(provider: provider.rawValue, reason: refusal) }
        logger.info(
            "webhook",
            metadata: ["provider": "\(provider.rawValue)", "status": "\(status.code)", "message": "\(message)"])
        return text(status, message)
    }

    private func receive(_ provider: WebhookProvider, _ request: Request) async -> (HTTPResponse.Status, String) {
        guard let secret = configuration.webhookSecrets?.secret(provider) else {
            return (.notFound, "no \(provider.rawValue) webhook secret is configured (--webhook-secret-file)")
        }
        let limit = configuration.maximumWebhookBody
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            return (.contentTooLarge, "the body is over \(limit) bytes")
        }
        var body: [UInt8] = []
        do {
            for try await chunk in request.body {
                guard body.count + chunk.readableBytes <= limit else {
                    return (.contentTooLarge, "the body is over \(limit) bytes")
                }
                body.append(contentsOf: chunk.readableBytesView)
            }
        } catch {
            return (.badRequest, "cannot read the body: \(error)")
        }
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        switch WebhookVerifier.verify(provider: provider, headers: headers, body: body, secret: secret) {
        case .unauthorized(let why):
            return (.unauthorized, why)
        case .malformed(let why):
            return (.badRequest, why)
        case .ping:
            return (.ok, "pong")
        case .ignored(let why):
            return (.accepted, "nothing to do: \(why)")
        case .push(let branch, let delivery):
            if let delivery, !deliveries.withLock({ $0.record("\(provider.rawValue):\(delivery)") }) {
                return (.accepted, "delivery \(delivery) was seen before: ignored")
            }
            if let branch, let tracked = await loop.trackedBranch(), branch != tracked {
                return (.accepted, "a push to \(branch), not \(tracked): nothing to do")
            }
            loop.trigger(.push)
            return (.ok, "fetch and pass started")
        }
    }
}

func iso(_ date: Date?) -> String {
    date.map { $0.formatted(.iso8601) } ?? "-"
}
