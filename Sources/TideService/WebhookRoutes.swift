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
    /// What bodies not yet verified hold, all together: a sender who opens many requests and sends half of each
    /// gets refused, not gigabytes of Tide's memory.
    let unverified = Mutex(UnverifiedBodies())

    struct UnverifiedBodies {
        var requests = 0
        var bytes = 0
        /// Requests being read, and the bytes they hold, by peer.
        var byPeer: [String: Int] = [:]
        var bytesByPeer: [String: Int] = [:]
    }

    /// Requests whose body is being read at once, and the bytes they may hold together; one peer (an address, or
    /// an IPv6 /64) gets at most a quarter of each, so one slow sender cannot keep everyone's webhooks out.
    static let maximumUnverifiedRequests = 32
    static let maximumUnverifiedPerPeer = 8
    static let maximumUnverifiedBytesPerPeer = 2 << 20
    static let maximumUnverifiedBytes = 8 << 20
    /// How long a body may take to arrive, all of it (a slow sender holds neither memory nor shutdown longer).
    static let bodyDeadline: Duration = .seconds(10)

    init(loop: PassLoop, metrics: DaemonMetrics, configuration: DaemonConfiguration, logger: Logger) {
        self.loop = loop
        self.metrics = metrics
        self.configuration = configuration
        self.logger = logger
    }

    func collection() -> RouteCollection<TideRequestContext> {
        let routes = RouteCollection(context: TideRequestContext.self)
        for provider in WebhookProvider.allCases {
            routes.post("/hooks/\(provider.rawValue)") { request, context in
                await self.webhook(provider, request, peer: context.peer ?? "?")
            }
        }
        return routes
    }

    private func webhook(_ provider: WebhookProvider, _ request: Request, peer: String) async -> Response {
        let (status, message) = await receive(provider, request, peer: peer)
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
        var response = textResponse(status, message)
        // A body refused unread is not drained: the connection closes, and what the sender still sends is dropped
        // by the kernel, not buffered by Tide.
        if [.serviceUnavailable, .contentTooLarge, .requestTimeout].contains(status) {
            response.headers[.connection] = "close"
        }
        return response
    }

    private func receive(
        _ provider: WebhookProvider, _ request: Request, peer: String
    ) async -> (HTTPResponse.Status, String) {
        guard let secret = configuration.webhookSecrets?.secret(provider) else {
            return (.notFound, "no \(provider.rawValue) webhook secret is configured (--webhook-secret-file)")
        }
        let limit = configuration.maximumWebhookBody
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            return (.contentTooLarge, "the body is over \(limit) bytes")
        }
        guard admit(peer) else {
            return (.serviceUnavailable, "too many webhook bodies are being read at once; send it again later")
        }
        let body: [UInt8]
        switch await read(request, limit: limit, peer: peer) {
        case .success(let read): body = read
        case .failure(let refusal): return (refusal.status, refusal.message)
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

    /// Counts a request whose body is about to be read; false when too many are being read already, in all or
    /// from `peer`.
    private func admit(_ peer: String) -> Bool {
        unverified.withLock {
            guard $0.requests < Self.maximumUnverifiedRequests,
                $0.byPeer[peer, default: 0] < Self.maximumUnverifiedPerPeer
            else { return false }
            $0.requests += 1
            $0.byPeer[peer, default: 0] += 1
            return true
        }
    }

    struct BodyRefusal: Error {
        var status: HTTPResponse.Status
        var message: String
    }

    /// The body, up to `limit` bytes, within `bodyDeadline`, and within what all bodies being read may hold.
    private func read(_ request: Request, limit: Int, peer: String) async -> Result<[UInt8], BodyRefusal> {
        var held = 0
        defer {
            unverified.withLock {
                $0.requests -= 1
                $0.bytes -= held
                let left = $0.byPeer[peer, default: 1] - 1
                $0.byPeer[peer] = left > 0 ? left : nil
                let bytesLeft = $0.bytesByPeer[peer, default: 0] - held
                $0.bytesByPeer[peer] = bytesLeft > 0 ? bytesLeft : nil
            }
        }
        let deadline = ContinuousClock.now + Self.bodyDeadline
        var body: [UInt8] = []
        do {
            for try await chunk in request.body {
                guard ContinuousClock.now < deadline else {
                    return .failure(BodyRefusal(status: .requestTimeout, message: "the body took too long to arrive"))
                }
                guard body.count + chunk.readableBytes <= limit else {
                    return .failure(BodyRefusal(status: .contentTooLarge, message: "the body is over \(limit) bytes"))
                }
                let granted = unverified.withLock {
                    guard $0.bytes + chunk.readableBytes <= Self.maximumUnverifiedBytes,
                        $0.bytesByPeer[peer, default: 0] + chunk.readableBytes <= Self.maximumUnverifiedBytesPerPeer
                    else { return false }
                    $0.bytes += chunk.readableBytes
                    $0.bytesByPeer[peer, default: 0] += chunk.readableBytes
                    return true
                }
                guard granted else {
                    return .failure(
                        BodyRefusal(
                            status: .serviceUnavailable,
                            message: "webhook bodies being read hold too much memory; send it again later"))
                }
                held += chunk.readableBytes
                body.append(contentsOf: chunk.readableBytesView)
            }
        } catch {
            return .failure(BodyRefusal(status: .badRequest, message: "cannot read the body: \(error)"))
        }
        return .success(body)
    }
}
