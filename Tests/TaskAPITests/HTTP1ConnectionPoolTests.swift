import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
@testable import TaskAPI

/// The NIO transport against servers that misbehave at the connection level.
@Suite("HTTP/1.1 connection pool")
struct HTTP1ConnectionPoolTests {
    private static let processing = #"{"errorId":0,"status":"processing"}"#

    private func client(_ server: OddServer, readTimeout: Duration = .seconds(10)) throws -> TaskResultClient {
        var configuration = TaskResultClient.Configuration(transport: .nio)
        configuration.maxConnectionsPerHost = 1
        configuration.readTimeout = readTimeout
        return try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: "http://127.0.0.1:\(server.port)"),
                                    configuration: configuration)
    }

    @Test func aRequestLostToTheServersIdleCloseGoesOutAgainOnAFreshConnection() async throws {
        // Each connection answers one request; a second request on it is met with a close,
        // as when a server's keep-alive timeout races the next request.
        let server = try await OddServer.start(answersPerConnection: 1, body: Self.processing)
        let client = try client(server)
        for _ in 0..<3 {
            #expect(await client.getTaskResult(taskId: "t", clientKey: ClientKey("k")) == .processing)
        }
        await client.shutdown()
        #expect(server.connections.withLockedValue { $0 } >= 3, "every answer came on a connection of its own")
        try await server.stop()
    }

    @Test func aServerThatNeverAnswersIsAReadTimeout() async throws {
        let server = try await OddServer.start(answersPerConnection: 0, body: Self.processing)
        let client = try client(server, readTimeout: .milliseconds(200))
        let outcome = await client.getTaskResult(taskId: "t", clientKey: ClientKey("k"))
        await client.shutdown()
        guard case .failed(.transient(.timeout, _), _, _, _) = outcome else {
            Issue.record("expected a timeout, got \(outcome)")
            return
        }
        try await server.stop()
    }
}

/// A loopback HTTP server that answers the first `answersPerConnection` requests of each
/// connection, then closes the connection at the next request without answering (0:
/// never answers, never closes).
private struct OddServer {
    let channel: any Channel
    let group: MultiThreadedEventLoopGroup
    let connections: NIOLockedValueBox<Int>
    var port: Int { channel.localAddress?.port ?? 0 }

    static func start(answersPerConnection: Int, body: String) async throws -> OddServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connections = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                connections.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Answer(limit: answersPerConnection, body: body))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return OddServer(channel: channel, group: group, connections: connections)
    }

    func stop() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    final class Answer: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let limit: Int
        let body: String
        var answered = 0

        init(limit: Int, body: String) {
            self.limit = limit
            self.body = body
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data), limit > 0 else { return }
            guard answered < limit else {
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
