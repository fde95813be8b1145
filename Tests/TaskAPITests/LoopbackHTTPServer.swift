import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Simulator

/// A loopback HTTP(S) server with one canned JSON answer, for the client's connection
/// tests: it records each request line and counts connections. `answersPerConnection`:
/// after that many answers a connection is closed at its next request without an answer
/// (a server's idle close racing the request); 0 never answers; nil answers every request.
struct LoopbackHTTPServer {
    let listener: LoopbackListener
    let requests: NIOLockedValueBox<[String]>
    let connections: NIOLockedValueBox<Int>
    var port: Int { listener.port }

    static func start(tls: NIOSSLContext? = nil, answersPerConnection: Int? = nil, body: String) async throws -> LoopbackHTTPServer {
        let requests = NIOLockedValueBox<[String]>([])
        let connections = NIOLockedValueBox(0)
        let listener = try await LoopbackListener.start { pipeline in
            connections.withLockedValue { $0 += 1 }
            if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
            try pipeline.configureHTTPServerPipeline()
            try pipeline.addHandler(CannedAnswer(limit: answersPerConnection, body: body, requests: requests))
        }
        return LoopbackHTTPServer(listener: listener, requests: requests, connections: connections)
    }

    func stop() async throws {
        try await listener.stop()
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
