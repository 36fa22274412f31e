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
    /// Who sent the request, as connections are counted (an address, or an IPv6 /64); nil when not known.
    let peer: String?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        peer = source.channel.remoteAddress?.ipAddress.map(ConnectionLimits.peer)
    }
}

/// The router of `tide run`: one route collection per concern — health (`/healthz`, `/readyz`), metrics
/// (`/metrics`), webhooks (`/hooks/PROVIDER`) — each a type of its own with what it reads; a new concern (the API,
/// the dashboard) is another collection added here.
func buildRouter(
    loop: PassLoop, source: RemoteSource?, store: any StateStore, metrics: DaemonMetrics,
    configuration: DaemonConfiguration, logger: Logger
) -> Router<TideRequestContext> {
    let router = Router(context: TideRequestContext.self)
    router.addRoutes(HealthRoutes(loop: loop, source: source, store: store).collection())
    router.addRoutes(MetricsRoutes(loop: loop, store: store, metrics: metrics).collection())
    router.addRoutes(
        WebhookRoutes(loop: loop, metrics: metrics, configuration: configuration, logger: logger).collection())
    return router
}

/// A plain-text answer (a trailing newline added).
func textResponse(_ status: HTTPResponse.Status, _ body: String) -> Response {
    Response(
        status: status, headers: [.contentType: "text/plain; charset=utf-8"],
        body: .init(byteBuffer: ByteBuffer(string: body.hasSuffix("\n") ? body : body + "\n")))
}
