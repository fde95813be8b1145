import DequeModule
import NIOCore
import NIOPosix
import NIOSSL

/// Keep-alive HTTP/1.1 connections to one provider host, for one kind of request: a
/// POST of a small JSON body. Everything runs on one event loop, so the pool needs no
/// lock: callers hand it batches of requests (one hop per batch, not per call), each
/// request goes out in one write on an idle connection, its answer is framed by
/// `HTTP1ResponseParser`, and its completion runs on the loop.
///
/// What to do — which connection takes which request, when to open and close one,
/// which call fails — is decided by `HTTP1PoolStateMachine` (tested without sockets);
/// this class reports the sockets' events to it and carries out the actions it returns.
/// Deadlines (the whole call, silence while waiting for the answer, idle connections)
/// are checked by one sweep every 50 ms rather than one timer per call. A call is never
/// retried here, except a request a reused connection lost before any answer byte: a
/// failure is reported and the engine decides.
final class HTTP1ConnectionPool: Sendable {
    struct Target: Sendable {
        var host: String
        var port: Int
        /// Set for https.
        var tls: TLSConfiguration?
        var path: String
        var userAgent: String
        /// Reached through this proxy's CONNECT tunnel; nil: directly.
        var proxy: HTTPProxy? = nil
    }

    struct Timeouts: Sendable {
        var connect: TimeAmount
        var read: TimeAmount
        var request: TimeAmount
        var idle: TimeAmount
    }

    enum Failure: Error, Sendable, Equatable {
        case connect(String)
        case connectTimeout
        case readTimeout
        case deadlineExceeded
        case closed
        case malformed(String)
        case bodyTooLarge
        case shutDown
    }

    /// One request: its body, and what to do with the answer (called on the loop).
    struct Request: Sendable {
        var body: [UInt8]
        var completion: @Sendable (Result<HTTP1ResponseParser.Response, Failure>) -> Void
        /// Sent again after a reused connection closed under it (at most once).
        var isRetry = false

        init(body: [UInt8], completion: @escaping @Sendable (Result<HTTP1ResponseParser.Response, Failure>) -> Void) {
            self.body = body
            self.completion = completion
        }
    }

    typealias Machine = HTTP1PoolStateMachine<Request>

    let loop: any EventLoop
    private let target: Target
    private let connectTimeout: TimeAmount
    private let maxBodyBytes: Int
    private let sslContext: NIOSSLContext?
    /// Request line and headers up to `Content-Length: `, the same for every call.
    private let head: [UInt8]
    private let state: NIOLoopBoundBox<State>

    init(target: Target, timeouts: Timeouts, maxConnections: Int, maxBodyBytes: Int, loop: any EventLoop) throws {
        self.loop = loop
        self.target = target
        connectTimeout = timeouts.connect
        self.maxBodyBytes = maxBodyBytes
        sslContext = try target.tls.map { try NIOSSLContext(configuration: $0) }
        let defaultPort = target.tls == nil ? 80 : 443
        let hostHeader = target.port == defaultPort ? target.host : "\(target.host):\(target.port)"
        head = Array(("POST \(target.path) HTTP/1.1\r\nHost: \(hostHeader)\r\n"
            + "Content-Type: application/json\r\nAccept: application/json\r\n"
            + "User-Agent: \(target.userAgent)\r\nContent-Length: ").utf8)
        let machine = Machine(maxConnections: maxConnections,
                              timeouts: .init(read: timeouts.read, request: timeouts.request, idle: timeouts.idle))
        state = NIOLoopBoundBox.makeBoxSendingValue(State(machine: machine), as: State.self, eventLoop: loop)
        loop.execute { [self] in
            state.value.sweeper = loop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) { [self] _ in
                run(state.value.machine.sweep(now: .now()))
            }
        }
    }

    /// Sends the requests (in order, as connections free up). Safe from any thread.
    func execute(_ requests: [Request]) {
        guard !requests.isEmpty else { return }
        if loop.inEventLoop {
            run(state.value.machine.enqueue(requests, now: .now()))
        } else {
            loop.execute { [self] in run(state.value.machine.enqueue(requests, now: .now())) }
        }
    }

    /// Fails waiting requests, closes every connection (their calls fail as `.shutDown`).
    func shutdown() async {
        let closed: EventLoopFuture<Void> = loop.flatSubmit { [self] in
            state.value.sweeper?.cancel()
            run(state.value.machine.shutdown())
            return EventLoopFuture.andAllComplete(state.value.channels.values.map(\.closeFuture), on: loop)
        }
        try? await closed.get()
    }

    // MARK: On the loop

    private final class State {
        var machine: Machine
        var channels: [Machine.ConnectionID: any Channel] = [:]
        var sweeper: RepeatedTask?

        init(machine: Machine) {
            self.machine = machine
        }
    }

    /// Carries out the machine's decisions, after its state has changed.
    private func run(_ actions: [Machine.Action]) {
        for action in actions {
            switch action {
            case .connect(let id):
                connect(id)
            case .start(let request, let id):
                guard let channel = state.value.channels[id] else { continue }
                let length = String(request.body.count).utf8
                var buffer = channel.allocator.buffer(capacity: head.count + length.count + 4 + request.body.count)
                buffer.writeBytes(head)
                buffer.writeBytes(length)
                buffer.writeBytes(Self.headEnd)
                buffer.writeBytes(request.body)
                channel.writeAndFlush(buffer, promise: nil)
            case .fail(let requests, let failure):
                for request in requests { request.completion(.failure(failure)) }
            case .close(let id):
                state.value.channels[id]?.close(promise: nil)
            }
        }
    }

    private static let headEnd: [UInt8] = [13, 10, 13, 10]

    private func connect(_ id: Machine.ConnectionID) {
        let proxy = target.proxy
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let proxy {
                        let tunnel = ProxyTunnelHandler(target: "\(target.host):\(target.port)", authorization: proxy.authorization,
                                                        timeout: connectTimeout, promise: channel.eventLoop.makePromise())
                        try channel.pipeline.syncOperations.addHandler(tunnel)
                    } else {
                        try addConnectionHandlers(to: channel)
                    }
                }
            }
        bootstrap.connect(host: proxy?.host ?? target.host, port: proxy?.port ?? target.port)
            .flatMap { [self] channel -> EventLoopFuture<any Channel> in
                // Through a proxy: the tunnel first, then TLS and the answers inside it.
                guard proxy != nil else { return channel.eventLoop.makeSucceededFuture(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.handler(type: ProxyTunnelHandler.self).established
                }.flatMap { $0 }.flatMapThrowing {
                    let pipeline = channel.pipeline.syncOperations
                    pipeline.removeHandler(try pipeline.handler(type: ProxyTunnelHandler.self), promise: nil)
                    try self.addConnectionHandlers(to: channel)
                    return channel
                }.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
            }
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    guard let handler = try? channel.pipeline.syncOperations.handler(type: ConnectionHandler.self) else {
                        channel.close(promise: nil)
                        run(state.value.machine.connectFailed(id, .connect("connection without its handler")))
                        return
                    }
                    handler.id = id
                    handler.pool = self
                    state.value.channels[id] = channel
                    run(state.value.machine.connected(id, now: .now()))
                case .failure(let error):
                    let failure: Failure
                    switch error {
                    case ChannelError.connectTimeout, ProxyTunnelHandler.Failure.timeout: failure = .connectTimeout
                    case let refused as ProxyTunnelHandler.Failure: failure = .connect("proxy \(proxy.map { "\($0)" } ?? ""): \(refused)")
                    default: failure = .connect("\(error)")
                    }
                    run(state.value.machine.connectFailed(id, failure))
                }
            }
    }

    /// TLS (for https) and the answer framing, on a connection to the provider or a tunnel to it.
    private func addConnectionHandlers(to channel: any Channel) throws {
        if let sslContext {
            let serverName = target.host.isIPAddress ? nil : target.host
            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
        }
        try channel.pipeline.syncOperations.addHandler(ConnectionHandler(maxBodyBytes: maxBodyBytes))
    }

    // MARK: Events from the connections

    fileprivate func read(_ id: Machine.ConnectionID) {
        state.value.machine.read(id, now: .now())
    }

    fileprivate func answered(_ id: Machine.ConnectionID, _ response: HTTP1ResponseParser.Response, keepAlive: Bool) {
        let (request, actions) = state.value.machine.answered(id, keepAlive: keepAlive, now: .now())
        request?.completion(.success(response))
        run(actions)
    }

    fileprivate func failed(_ id: Machine.ConnectionID, _ failure: Failure) {
        run(state.value.machine.failed(id, failure))
    }

    fileprivate func closed(_ id: Machine.ConnectionID) {
        state.value.channels[id] = nil
        run(state.value.machine.closed(id, now: .now()))
    }

    /// Frames answers on one channel and reports them to the pool.
    fileprivate final class ConnectionHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        var id: Machine.ConnectionID?
        var pool: HTTP1ConnectionPool?
        private var parser: HTTP1ResponseParser

        init(maxBodyBytes: Int) {
            parser = HTTP1ResponseParser(maxBodyBytes: maxBodyBytes)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            guard let id, let pool else { return }
            pool.read(id)
            do {
                var bytes = buffer.readableBytesView[...]
                while let response = try parser.feed(bytes) {
                    bytes = bytes[bytes.endIndex...]
                    pool.answered(id, response, keepAlive: response.keepAlive && parser.isIdle)
                }
            } catch let error as HTTP1ResponseParser.ParseError {
                switch error {
                case .bodyTooLarge: pool.failed(id, .bodyTooLarge)
                case .headTooLarge: pool.failed(id, .malformed("response head too large"))
                case .malformed(let reason): pool.failed(id, .malformed(reason))
                }
            } catch {
                pool.failed(id, .malformed("\(error)"))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if let id, let pool {
                if let response = parser.finish() { pool.answered(id, response, keepAlive: false) }
                pool.closed(id)
            }
            pool = nil
            context.fireChannelInactive()
        }

        /// The close that follows decides (`channelInactive`): retry or fail the call.
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

extension String {
    /// An IPv4 or IPv6 literal (no SNI for those).
    fileprivate var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}
