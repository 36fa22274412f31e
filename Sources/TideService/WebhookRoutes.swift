import HTTPTypes
import Hummingbird
import Logging
import Synchronization

/// `POST /hooks/github|gitlab|generic`: a signed push starts a fetch and a pass; anything else is answered and
/// counted, and starts nothing.
final class WebhookRoutes: Sendable {
    let loop: PassLoop
    let metrics: DaemonMetrics
    let configuration: DaemonConfiguration
    let logger: Logger
    /// Deliveries seen lately (a replayed delivery id starts nothing).
    let deliveries = Mutex(DeliveryLog())

    init(loop: PassLoop, metrics: DaemonMetrics, configuration: DaemonConfiguration, logger: Logger) {
        self.loop = loop
        self.metrics = metrics
        self.configuration = configuration
        self.logger = logger
    }

    func collection() -> RouteCollection<TideRequestContext> {
        let routes = RouteCollection(context: TideRequestContext.self)
        for provider in WebhookProvider.allCases {
            routes.post("/hooks/\(provider.rawValue)") { request, _ in
                await self.webhook(provider, request)
            }
        }
        return routes
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
        return textResponse(status, message)
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
