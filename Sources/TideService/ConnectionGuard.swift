import Glibc
import NIOCore
import Synchronization

/// Bounds what connections can take from `tide run` before anyone is authenticated (hardening round two, 1): at
/// most `total` open at once and `perPeer` from one address, and a request's head must arrive within
/// `headDeadline` of the connection opening (a sender trickling one byte at a time gets no longer than that).
/// What is over a bound is closed at once. The descriptors this keeps free are for the executors, git and the state
/// (`reserve`: the total never comes closer than that to the process's descriptor limit).
final class ConnectionLimits: Sendable {
    let total: Int
    let perPeer: Int
    let headDeadline: TimeAmount
    private let open = Mutex(Open())

    struct Open {
        var total = 0
        var byPeer: [String: Int] = [:]
    }

    /// Descriptors kept for everything else Tide opens.
    static let reserve = 256

    init(total: Int = 512, perPeer: Int = 128, headDeadline: TimeAmount = .seconds(10)) {
        self.total = min(total, max(16, Self.descriptorLimit() - Self.reserve))
        self.perPeer = min(perPeer, self.total)
        self.headDeadline = headDeadline
    }

    /// The soft limit on open descriptors, raised to the hard limit first (systemd's default soft limit, 1,024, is
    /// what a unit gets unless it says otherwise).
    static func descriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(min(limit.rlim_cur, rlim_t(Int32.max)))
    }

    /// Counts a new connection from `peer`; false when it is over a bound (and is not counted).
    func admit(_ peer: String) -> Bool {
        open.withLock {
            guard $0.total < total, $0.byPeer[peer, default: 0] < perPeer else { return false }
            $0.total += 1
            $0.byPeer[peer, default: 0] += 1
            return true
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
        let address = context.channel.remoteAddress?.ipAddress ?? "?"
        guard limits.admit(address) else {
            context.close(promise: nil)
            return
        }
        peer = address
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: limits.headDeadline) { [weak self] in
            if self?.headArrived == false { channel.close(promise: nil) }
        }
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
        if let peer { limits.release(peer) }
        peer = nil
        context.fireChannelInactive()
    }
}
