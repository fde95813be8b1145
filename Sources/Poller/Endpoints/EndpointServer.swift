import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The small HTTP/1.1 server (SwiftNIO) behind ezpoll's own ports: the operator port
/// (`ObservabilityServer`) and the callback receiver (`CallbackReceiver`). Each request
/// is answered on its event loop by a synchronous handler (cheap: a lock and a lookup).
///
/// Bounds, whatever a peer sends: a body above `maxBodyBytes` is answered 413 at once and
/// the connection closed; a connection that sends nothing for `idleTimeout` is closed; at
/// most `maxConnections` are open (more are closed as they arrive).
final class EndpointServer: Sendable {
    struct Request: Sendable {
        var method: HTTPMethod
        var uri: String
        var body: [UInt8]
        /// The body was larger than `maxBodyBytes` (and `body` holds none of it).
        var bodyTooLarge = false
    }

    struct Response: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]

        init(_ status: HTTPResponseStatus, contentType: String = "text/plain; charset=utf-8", _ body: [UInt8]) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }

        init(_ status: HTTPResponseStatus, text: String) {
            self.init(status, Array(text.utf8))
        }
    }

    typealias Handler = @Sendable (Request) -> Response

    struct Limits: Sendable {
        var maxBodyBytes = 0
        /// Default: 30 s.
        var idleTimeout = TimeAmount.seconds(30)
        /// Default: 256.
        var maxConnections = 256
    }

    let host: String
    /// The bound port (useful with port 0).
    let port: Int
    private let serverChannel: Channel
    private let children: NIOLockedValueBox<[ObjectIdentifier: Channel]>

    private init(host: String, port: Int, serverChannel: Channel, children: NIOLockedValueBox<[ObjectIdentifier: Channel]>) {
        self.host = host
        self.port = port
        self.serverChannel = serverChannel
        self.children = children
    }

    /// Binds `host:port` (`port: 0` picks a free port) and serves `handler`.
    static func start(host: String, port: Int, limits: Limits, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                      handler: @escaping Handler) async throws -> EndpointServer {
        let children = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                let admitted = children.withLockedValue { open -> Bool in
                    guard open.count < limits.maxConnections else { return false }
                    open[id] = channel
                    return true
                }
                guard admitted else { return channel.close() }
                channel.closeFuture.whenComplete { _ in children.withLockedValue { _ = $0.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(EndpointHTTPHandler(maxBodyBytes: limits.maxBodyBytes, handler: handler))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        guard let bound = channel.localAddress?.port else {
            try? await channel.close()
            throw EndpointServerError(message: "no local address after binding \(host):\(port)")
        }
        return EndpointServer(host: host, port: bound, serverChannel: channel, children: children)
    }

    /// Stops accepting and closes open connections.
    func stop() async {
        try? await serverChannel.close()
        for channel in children.withLockedValue({ Array($0.values) }) {
            try? await channel.close()
        }
    }
}

public struct EndpointServerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// One connection's requests: the body gathered up to the limit, then the handler's answer.
final class EndpointHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let maxBodyBytes: Int
    private let handler: EndpointServer.Handler
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(maxBodyBytes: Int, handler: @escaping EndpointServer.Handler) {
        self.maxBodyBytes = maxBodyBytes
        self.handler = handler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.removeAll(keepingCapacity: true)
        case .body(let chunk):
            guard let head = self.head else { return }
            guard body.count + chunk.readableBytes <= maxBodyBytes else {
                // Answer now and close: reading the rest would let the peer choose our memory and time.
                self.head = nil
                body = []
                let request = EndpointServer.Request(method: head.method, uri: head.uri, body: [], bodyTooLarge: true)
                respond(context: context, head: head, response: handler(request), close: true)
                return
            }
            body.append(contentsOf: chunk.readableBytesView)
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            let response = handler(EndpointServer.Request(method: head.method, uri: head.uri, body: body))
            body.removeAll(keepingCapacity: false)
            respond(context: context, head: head, response: response, close: !head.isKeepAlive)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, response: EndpointServer.Response, close: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        if close { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if close {
            let channel = context.channel
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
