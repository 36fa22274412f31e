import Hummingbird
import NIOCore
import TideState

/// `/metrics`: the Prometheus exposition of the live state, the passes and the actions.
struct MetricsRoutes: Sendable {
    let loop: PassLoop
    let store: any StateStore
    let metrics: DaemonMetrics

    func collection() -> RouteCollection<TideRequestContext> {
        let routes = RouteCollection(context: TideRequestContext.self)
        routes.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(
                    byteBuffer: ByteBuffer(
                        string: await metrics.exposition(
                            store: store, health: loop.health.withLock { $0 }, desired: loop.currentDesired()))))
        }
        return routes
    }
}
