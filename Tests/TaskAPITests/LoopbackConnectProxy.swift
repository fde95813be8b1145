import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Simulator

/// An HTTP CONNECT proxy on loopback, as an egress proxy in front of a provider: it reads
/// `CONNECT host:port`, checks `Proxy-Authorization` when `credentials` is set (407
/// otherwise), connects to the target, answers 200 and relays bytes both ways. It
/// records each CONNECT head and every byte it relayed towards the target.
struct LoopbackConnectProxy {
    let listener: LoopbackListener
    let heads: NIOLockedValueBox<[String]>
    let relayed: NIOLockedValueBox<[UInt8]>
    var port: Int { listener.port }

    /// `credentials`: the `Basic` token the proxy demands, nil for none.
    static func start(credentials: String? = nil) async throws -> LoopbackConnectProxy {
        let heads = NIOLockedValueBox<[String]>([])
        let relayed = NIOLockedValueBox<[UInt8]>([])
        let listener = try await LoopbackListener.start { pipeline in
            try pipeline.addHandler(ConnectHandler(credentials: credentials, heads: heads, relayed: relayed))
        }
        return LoopbackConnectProxy(listener: listener, heads: heads, relayed: relayed)
    }

    func stop() async throws {
        try await listener.stop()
    }

    private final class ConnectHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let credentials: String?
        let heads: NIOLockedValueBox<[String]>
        let relayed: NIOLockedValueBox<[UInt8]>
        var head: [UInt8] = []
        var peer: (any Channel)?

        init(credentials: String?, heads: NIOLockedValueBox<[String]>, relayed: NIOLockedValueBox<[UInt8]>) {
            self.credentials = credentials
            self.heads = heads
            self.relayed = relayed
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            if let peer {
                relayed.withLockedValue { $0.append(contentsOf: buffer.readableBytesView) }
                peer.writeAndFlush(buffer, promise: nil)
                return
            }
            head.append(contentsOf: buffer.readableBytesView)
            let text = String(decoding: head, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { return }
            let lines = text[..<end.lowerBound].components(separatedBy: "\r\n")
            heads.withLockedValue { $0.append(lines.joined(separator: "\n")) }
            let request = lines[0].split(separator: " ")
            guard request.count == 3, request[0] == "CONNECT", let colon = request[1].lastIndex(of: ":"),
                  let port = Int(request[1][request[1].index(after: colon)...]) else {
                answer(context, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", close: true)
                return
            }
            if let credentials, !lines.contains(where: { $0.lowercased() == "proxy-authorization: basic \(credentials.lowercased())" }) {
                answer(context, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n", close: true)
                return
            }
            let host = String(request[1][..<colon])
            let client = context.channel
            let loop = context.eventLoop
            ClientBootstrap(group: loop)
                .channelInitializer { target in
                    target.eventLoop.makeCompletedFuture {
                        try target.pipeline.syncOperations.addHandler(Relay(to: client))
                    }
                }
                .connect(host: host, port: port)
                .whenComplete { result in
                    switch result {
                    case .success(let target):
                        // Kept on the loop: the handler's state is only touched there.
                        (try? client.pipeline.syncOperations.handler(type: ConnectHandler.self))?.peer = target
                        client.writeAndFlush(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n"), promise: nil)
                    case .failure:
                        client.writeAndFlush(ByteBuffer(string: "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"))
                            .whenComplete { _ in client.close(promise: nil) }
                    }
                }
        }

        private func answer(_ context: ChannelHandlerContext, _ text: String, close: Bool) {
            let channel = context.channel
            channel.writeAndFlush(ByteBuffer(string: text)).whenComplete { _ in
                if close { channel.close(promise: nil) }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer?.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// The target side of a tunnel: everything it reads goes back to the client.
    private final class Relay: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let client: any Channel

        init(to client: any Channel) {
            self.client = client
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            client.writeAndFlush(unwrapInboundIn(data), promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            client.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
