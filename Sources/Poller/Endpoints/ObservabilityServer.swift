import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `ezpoll run`'s operator port (SwiftNIO HTTP/1.1):
///
/// | request | answer |
/// |---|---|
/// | `GET /metrics` | Prometheus text format 0.0.4 |
/// | `GET /health/live` | 200 while live, else 503 (JSON) |
/// | `GET /health/ready` | 200 when ready, else 503 with the reasons (JSON) |
///
/// Anything else: 404 (405 for another method on a known path).
public final class ObservabilityServer: Sendable {
    public let host: String
    /// The bound port (useful with port 0).
    public let port: Int
    private let serverChannel: Channel
    private let children: NIOLockedValueBox<[ObjectIdentifier: Channel]>

    private init(host: String, port: Int, serverChannel: Channel, children: NIOLockedValueBox<[ObjectIdentifier: Channel]>) {
        self.host = host
        self.port = port
        self.serverChannel = serverChannel
        self.children = children
    }

    /// `http://host:port`.
    public var baseURL: String { "http://\(host):\(port)" }

    /// Binds and serves `source`. `port: 0` picks a free port.
    public static func start(
        source: any ObservabilitySource, host: String, port: Int, logger: Logger,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ObservabilityServer {
        let children = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                children.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in children.withLockedValue { _ = $0.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ObservabilityHTTPHandler(source: source))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        guard let bound = channel.localAddress?.port else {
            try? await channel.close()
            throw ObservabilityError(message: "no local address after binding \(host):\(port)")
        }
        logger.info("metrics and health endpoints listening", metadata: ["address": "\(host):\(bound)"])
        return ObservabilityServer(host: host, port: bound, serverChannel: channel, children: children)
    }

    /// Stops accepting and closes open connections.
    public func stop() async {
        try? await serverChannel.close()
        for channel in children.withLockedValue({ Array($0.values) }) {
            try? await channel.close()
        }
    }
}

public struct ObservabilityError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// One connection's requests; answers are computed on the event loop (cheap: a lock and
/// a registry walk).
final class ObservabilityHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let source: any ObservabilitySource
    private var request: HTTPRequestHead?

    init(source: any ObservabilitySource) {
        self.source = source
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break // no endpoint takes a body
        case .end:
            guard let head = request else { return }
            request = nil
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let known = ["/metrics", "/health/live", "/health/ready"]
        let (status, contentType, body): (HTTPResponseStatus, String, [UInt8])
        if !known.contains(path) {
            (status, contentType, body) = (.notFound, "text/plain; charset=utf-8", Array("not found\n".utf8))
        } else if head.method != .GET && head.method != .HEAD {
            (status, contentType, body) = (.methodNotAllowed, "text/plain; charset=utf-8", Array("GET only\n".utf8))
        } else if path == "/metrics" {
            (status, contentType, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", source.metricsExposition())
        } else {
            let health = source.health()
            let live = path == "/health/live"
            let ok = live ? health.isLive : health.isReady
            (status, contentType, body) = (ok ? .ok : .serviceUnavailable, "application/json", Array(health.json(liveness: live).utf8))
        }
        let keepAlive = head.isKeepAlive
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            let channel = context.channel
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

private extension ChannelHandlerContext {
    func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise(of: Void.self) }
}
