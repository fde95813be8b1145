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
/// At most `maxConnections` connections, opened as requests wait and reused until the
/// server closes them or they idle past `idleTimeout`. Deadlines (the whole call,
/// silence while waiting for the answer) are checked by one sweep every 50 ms rather
/// than one timer per call. A call is never retried here: a failure is reported and
/// the engine decides.
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

    let loop: any EventLoop
    private let target: Target
    private let timeouts: Timeouts
    private let maxConnections: Int
    private let maxBodyBytes: Int
    private let sslContext: NIOSSLContext?
    /// Request line and headers up to `Content-Length: `, the same for every call.
    private let head: [UInt8]
    private let state: NIOLoopBoundBox<State>

    init(target: Target, timeouts: Timeouts, maxConnections: Int, maxBodyBytes: Int, loop: any EventLoop) throws {
        self.loop = loop
        self.target = target
        self.timeouts = timeouts
        self.maxConnections = max(1, maxConnections)
        self.maxBodyBytes = maxBodyBytes
        sslContext = try target.tls.map { try NIOSSLContext(configuration: $0) }
        let defaultPort = target.tls == nil ? 80 : 443
        let hostHeader = target.port == defaultPort ? target.host : "\(target.host):\(target.port)"
        head = Array(("POST \(target.path) HTTP/1.1\r\nHost: \(hostHeader)\r\n"
            + "Content-Type: application/json\r\nAccept: application/json\r\n"
            + "User-Agent: \(target.userAgent)\r\nContent-Length: ").utf8)
        state = NIOLoopBoundBox.makeBoxSendingValue(State(), as: State.self, eventLoop: loop)
        loop.execute { [self] in
            state.value.sweeper = loop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) { [self] _ in
                sweep()
            }
        }
    }

    /// Sends the requests (in order, as connections free up). Safe from any thread.
    func execute(_ requests: [Request]) {
        guard !requests.isEmpty else { return }
        if loop.inEventLoop {
            enqueue(requests)
        } else {
            loop.execute { [self] in enqueue(requests) }
        }
    }

    /// Fails waiting requests, closes every connection (their calls fail as `.shutDown`).
    func shutdown() async {
        let closed: EventLoopFuture<Void> = loop.flatSubmit { [self] in
            let s = state.value
            s.isShutDown = true
            s.sweeper?.cancel()
            let waiting = s.waiting
            s.waiting.removeAll()
            for request in waiting { request.request.completion(.failure(.shutDown)) }
            let closes = s.connections.map { connection -> EventLoopFuture<Void> in
                connection.fail(.shutDown)
                return connection.channel.close().recover { _ in }
            }
            return EventLoopFuture.andAllComplete(closes, on: loop)
        }
        try? await closed.get()
    }

    // MARK: On the loop

    private final class State {
        var waiting: Deque<Waiting> = []
        var idle: [Connection] = []
        var connections: [Connection] = []
        var connecting = 0
        var isShutDown = false
        var sweeper: RepeatedTask?
    }

    private struct Waiting {
        var request: Request
        var deadline: NIODeadline
    }

    private func enqueue(_ requests: [Request]) {
        let s = state.value
        guard !s.isShutDown else {
            for request in requests { request.completion(.failure(.shutDown)) }
            return
        }
        let deadline = NIODeadline.now() + timeouts.request
        for request in requests { s.waiting.append(Waiting(request: request, deadline: deadline)) }
        pump()
    }

    /// Idle connections take waiting requests; more connections open while requests wait.
    private func pump() {
        let s = state.value
        while !s.waiting.isEmpty, let connection = s.idle.popLast() {
            let next = s.waiting.removeFirst()
            connection.start(next.request, deadline: next.deadline, head: head)
        }
        let wanted = min(s.waiting.count, maxConnections - s.connections.count - s.connecting)
        if wanted > 0, !s.isShutDown {
            for _ in 0..<wanted { connect() }
        }
    }

    private func connect() {
        state.value.connecting += 1
        let proxy = target.proxy
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeouts.connect)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let proxy {
                        let tunnel = ProxyTunnelHandler(target: "\(target.host):\(target.port)", authorization: proxy.authorization,
                                                        timeout: timeouts.connect, promise: channel.eventLoop.makePromise())
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
                let s = state.value
                s.connecting -= 1
                switch result {
                case .success(let channel):
                    guard let handler = try? channel.pipeline.syncOperations.handler(type: ConnectionHandler.self) else {
                        channel.close(promise: nil)
                        return
                    }
                    let connection = Connection(channel: channel, handler: handler)
                    handler.connection = connection
                    handler.pool = self
                    if s.isShutDown {
                        channel.close(promise: nil)
                        return
                    }
                    s.connections.append(connection)
                    s.idle.append(connection)
                    pump()
                case .failure(let error):
                    // Nothing can serve the waiting calls: report the failure to them.
                    guard s.connections.isEmpty, s.connecting == 0 else { return }
                    let failure: Failure
                    switch error {
                    case ChannelError.connectTimeout, ProxyTunnelHandler.Failure.timeout: failure = .connectTimeout
                    case let refused as ProxyTunnelHandler.Failure: failure = .connect("proxy \(proxy.map { "\($0)" } ?? ""): \(refused)")
                    default: failure = .connect("\(error)")
                    }
                    let waiting = s.waiting
                    s.waiting.removeAll()
                    for request in waiting { request.request.completion(.failure(failure)) }
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

    /// A connection answered its call and may take another.
    fileprivate func finished(_ connection: Connection, keepAlive: Bool) {
        let s = state.value
        if keepAlive && !s.isShutDown {
            s.idle.append(connection)
            pump()
        } else {
            connection.channel.close(promise: nil)
        }
    }

    /// A request a reused connection lost before any answer byte goes first to the next
    /// connection (getTaskResult only reads, so sending it twice is harmless).
    fileprivate func retry(_ request: Request, deadline: NIODeadline) {
        var request = request
        request.isRetry = true
        state.value.waiting.prepend(Waiting(request: request, deadline: deadline))
    }

    fileprivate func closed(_ connection: Connection) {
        let s = state.value
        s.connections.removeAll { $0 === connection }
        s.idle.removeAll { $0 === connection }
        pump()
    }

    /// Deadlines: calls waiting for a connection, calls waiting for their answer, idle connections.
    private func sweep() {
        let s = state.value
        let now = NIODeadline.now()
        while let first = s.waiting.first, first.deadline <= now {
            s.waiting.removeFirst()
            first.request.completion(.failure(.deadlineExceeded))
        }
        for connection in s.connections {
            if let failure = connection.expired(now: now, readTimeout: timeouts.read) {
                connection.fail(failure)
                connection.channel.close(promise: nil)
            } else if connection.isIdle, now - connection.lastActivity > timeouts.idle {
                connection.channel.close(promise: nil)
            }
        }
    }

    /// One keep-alive connection and its call in progress (loop only).
    fileprivate final class Connection {
        let channel: any Channel
        let handler: ConnectionHandler
        var current: Request?
        var deadline = NIODeadline.distantFuture
        var lastActivity = NIODeadline.now()
        /// Answers received on this connection so far.
        var answers = 0
        /// An answer byte arrived for the call in progress.
        var answering = false

        init(channel: any Channel, handler: ConnectionHandler) {
            self.channel = channel
            self.handler = handler
        }

        var isIdle: Bool { current == nil }

        func start(_ request: Request, deadline: NIODeadline, head: [UInt8]) {
            current = request
            self.deadline = deadline
            lastActivity = NIODeadline.now()
            let length = String(request.body.count).utf8
            var buffer = channel.allocator.buffer(capacity: head.count + length.count + 4 + request.body.count)
            buffer.writeBytes(head)
            buffer.writeBytes(length)
            buffer.writeBytes(Self.headEnd)
            buffer.writeBytes(request.body)
            channel.writeAndFlush(buffer, promise: nil)
        }

        func expired(now: NIODeadline, readTimeout: TimeAmount) -> Failure? {
            guard current != nil else { return nil }
            if now >= deadline { return .deadlineExceeded }
            if now - lastActivity > readTimeout { return .readTimeout }
            return nil
        }

        /// Ends the call in progress, if any, with `failure`.
        func fail(_ failure: Failure) {
            guard let request = current else { return }
            current = nil
            request.completion(.failure(failure))
        }

        func answered(_ response: HTTP1ResponseParser.Response) -> Request? {
            defer { current = nil }
            answers += 1
            answering = false
            return current
        }

        /// The call in progress, if the server closed this kept-alive connection before
        /// answering it: the race of a request with the server's idle close.
        func takeRetriable() -> (Request, NIODeadline)? {
            guard let request = current, answers > 0, !answering, !request.isRetry else { return nil }
            current = nil
            return (request, deadline)
        }

        private static let headEnd: [UInt8] = [13, 10, 13, 10]
    }

    /// Frames answers on one channel and hands them to its connection.
    fileprivate final class ConnectionHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        weak var connection: Connection?
        var pool: HTTP1ConnectionPool?
        private var parser: HTTP1ResponseParser

        init(maxBodyBytes: Int) {
            parser = HTTP1ResponseParser(maxBodyBytes: maxBodyBytes)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            guard let connection else { return }
            connection.lastActivity = NIODeadline.now()
            connection.answering = connection.current != nil
            do {
                var bytes = buffer.readableBytesView[...]
                while let response = try parser.feed(bytes) {
                    bytes = bytes[bytes.endIndex...]
                    deliver(response, on: connection)
                }
            } catch let error as HTTP1ResponseParser.ParseError {
                switch error {
                case .bodyTooLarge: connection.fail(.bodyTooLarge)
                case .headTooLarge: connection.fail(.malformed("response head too large"))
                case .malformed(let reason): connection.fail(.malformed(reason))
                }
                context.close(promise: nil)
            } catch {
                connection.fail(.malformed("\(error)"))
                context.close(promise: nil)
            }
        }

        private func deliver(_ response: HTTP1ResponseParser.Response, on connection: Connection) {
            guard let request = connection.answered(response) else {
                // An answer nobody asked for: the connection is out of step.
                connection.channel.close(promise: nil)
                return
            }
            request.completion(.success(response))
            pool?.finished(connection, keepAlive: response.keepAlive && parser.isIdle)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if let connection {
                if let response = parser.finish() {
                    deliver(response, on: connection)
                } else if let (request, deadline) = connection.takeRetriable() {
                    pool?.retry(request, deadline: deadline)
                } else {
                    connection.fail(.closed)
                }
                pool?.closed(connection)
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
