import Glibc
import NIOCore
import Synchronization

/// Bounds what connections can take from `tide run` before anyone is authenticated (hardening round two, 1): at
/// most `total` open at once and `perPeer` from one address (an IPv6 /64 counts as one), a request's head within
/// `headDeadline` of the connection opening, and no connection open longer than `lifetime` (a sender trickling a
/// body one byte at a time keeps its slot no longer; clients reconnect). What is over a bound is closed at once.
/// The descriptors this keeps free are for the executors, git and the state (`reserve`: the total never comes
/// closer than that to the process's descriptor limit); `loopbackReserve` more are for 127.0.0.1 and ::1 (the
/// host's own health checks and scrapes).
final class ConnectionLimits: Sendable {
    let total: Int
    let perPeer: Int
    let headDeadline: TimeAmount
    let lifetime: TimeAmount
    private let open = Mutex(Open())

    struct Open {
        var total = 0
        var byPeer: [String: Int] = [:]
    }

    /// Descriptors kept for everything else Tide opens.
    static let reserve = 256
    /// Connections beyond `total` that only loopback peers may open.
    static let loopbackReserve = 16

    init(
        total: Int = 512, perPeer: Int = 128, headDeadline: TimeAmount = .seconds(10),
        lifetime: TimeAmount = .seconds(60)
    ) {
        self.total = min(total, max(16, Self.descriptorLimit() - Self.reserve - Self.loopbackReserve))
        self.perPeer = min(perPeer, self.total)
        self.headDeadline = headDeadline
        self.lifetime = lifetime
    }

    /// The soft limit on open descriptors (systemd's default, 1,024, unless the unit says otherwise). It is not
    /// raised: executors inherit it, and programs that close every descriptor up to it, or use `select`, suffer.
    static func descriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return Int(min(limit.rlim_cur, rlim_t(Int32.max)))
    }

    /// Who a connection counts against: its address, or for IPv6 its /64 (one host has a whole /64 to pick from).
    /// The address is parsed, not split as text: `2001:db8::5` and `2001:db8:0:0::6` are one /64.
    static func peer(_ address: String) -> String {
        guard address.contains(":") else { return address }
        var bytes = in6_addr()
        guard inet_pton(AF_INET6, address, &bytes) == 1 else { return address }
        let prefix = withUnsafeBytes(of: &bytes) { raw in
            stride(from: 0, to: 8, by: 2).map { String(format: "%x", Int(raw[$0]) << 8 | Int(raw[$0 + 1])) }
        }
        return prefix.joined(separator: ":") + "::/64"
    }

    /// Counts a new connection from `address`: the peer it counts against, or nil when it is over a bound (and is
    /// not counted).
    func admit(_ address: String) -> String? {
        let peer = Self.peer(address)
        let loopback = address == "127.0.0.1" || address == "::1"
        let limit = total + (loopback ? Self.loopbackReserve : 0)
        return open.withLock {
            guard $0.total < limit, $0.byPeer[peer, default: 0] < perPeer else { return nil }
            $0.total += 1
            $0.byPeer[peer, default: 0] += 1
            return peer
        }
    }

    func release(_ peer: String) {
        open.withLock {
            $0.total -= 1
            $0.byPeer[peer, default: 1] -= 1
            if $0.byPeer[peer] == 0 { $0.byPeer[peer] = nil }
        }
    }

    var openConnections: Int { open.withLock { $0.total } }

    /// The handler each connection gets.
    func handler() -> ConnectionGuard { ConnectionGuard(limits: self) }
}

/// One connection's part of `ConnectionLimits`: admitted when it opens (else closed), released when it closes,
/// and closed when its first request's head has not arrived in time.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    /// Request parts, as the HTTP codec before it decodes them (the first one is a request's head); passed on as
    /// they are.
    typealias InboundIn = Any

    private let limits: ConnectionLimits
    private var peer: String?
    private var headArrived = false
    private var deadline: Scheduled<Void>?
    private var lifetime: Scheduled<Void>?

    init(limits: ConnectionLimits) {
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if peer == nil { admit(context: context) }
        context.fireChannelActive()
    }

    private func admit(context: ChannelHandlerContext) {
        guard let admitted = limits.admit(context.channel.remoteAddress?.ipAddress ?? "?") else {
            context.close(promise: nil)
            return
        }
        peer = admitted
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: limits.headDeadline) { [weak self] in
            if self?.headArrived == false { channel.close(promise: nil) }
        }
        lifetime = context.eventLoop.scheduleTask(in: limits.lifetime) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The codec before this handler passes a request's head first: anything read means a head arrived.
        if !headArrived {
            headArrived = true
            deadline?.cancel()
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        lifetime?.cancel()
        if let peer { limits.release(peer) }
        peer = nil
        context.fireChannelInactive()
    }
}
