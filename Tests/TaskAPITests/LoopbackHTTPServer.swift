import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A loopback HTTP(S) server with one canned JSON answer, for the client's connection
/// tests: it records each request line and counts connections. `answersPerConnection`:
/// after that many answers a connection is closed at its next request without an answer
/// (a server's idle close racing the request); 0 never answers; nil answers every request.
struct LoopbackHTTPServer {
    let channel: any Channel
    let group: MultiThreadedEventLoopGroup
    let requests: NIOLockedValueBox<[String]>
    let connections: NIOLockedValueBox<Int>
    var port: Int { channel.localAddress?.port ?? 0 }

    static func start(tls: NIOSSLContext? = nil, answersPerConnection: Int? = nil, body: String) async throws -> LoopbackHTTPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let requests = NIOLockedValueBox<[String]>([])
        let connections = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                connections.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        CannedAnswer(limit: answersPerConnection, body: body, requests: requests))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LoopbackHTTPServer(channel: channel, group: group, requests: requests, connections: connections)
    }

    func stop() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    final class CannedAnswer: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let limit: Int?
        let body: String
        let requests: NIOLockedValueBox<[String]>
        var answered = 0

        init(limit: Int?, body: String, requests: NIOLockedValueBox<[String]>) {
            self.limit = limit
            self.body = body
            self.requests = requests
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                requests.withLockedValue { $0.append("\(head.method.rawValue) \(head.uri)") }
            case .body:
                break
            case .end:
                if limit == 0 { return }
                if let limit, answered >= limit {
                    context.close(promise: nil)
                    return
                }
                answered += 1
                var headers = HTTPHeaders([("Content-Type", "application/json")])
                headers.add(name: "Content-Length", value: String(body.utf8.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
