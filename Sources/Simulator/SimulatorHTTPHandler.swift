import NIOCore
import NIOHTTP1

/// One connection's HTTP/1.1 handler: gathers a request, asks the engine,
/// writes the answer (after an injected delay, or drops the connection).
final class SimulatorHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxBodyBytes = 4 << 20

    private let engine: SimulatorEngine
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyTooLarge = false
    private var isActive = true

    init(engine: SimulatorEngine) {
        self.engine = engine
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body = nil
            bodyTooLarge = false
        case .body(var chunk):
            guard !bodyTooLarge else { return }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
            if body!.readableBytes > SimulatorHTTPHandler.maxBodyBytes {
                bodyTooLarge = true
                body = nil
            }
        case .end:
            guard let requestHead = head else { return }
            head = nil
            let response: SimHTTPResponse
            if bodyTooLarge {
                response = SimHTTPResponse(status: .payloadTooLarge, body: Array(#"{"error":"body too large"}"#.utf8))
            } else {
                let bytes = body.map { Array($0.readableBytesView) } ?? []
                response = engine.handle(method: requestHead.method, uri: requestHead.uri, body: bytes)
            }
            body = nil
            let keepAlive = requestHead.isKeepAlive
            if let delay = response.delayReal, delay > 0 {
                context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) {
                    self.send(response, version: requestHead.version, keepAlive: keepAlive, context: context)
                }
            } else {
                send(response, version: requestHead.version, keepAlive: keepAlive, context: context)
            }
        }
    }

    private func send(_ response: SimHTTPResponse, version: HTTPVersion, keepAlive: Bool, context: ChannelHandlerContext) {
        guard isActive else { return }
        if response.drop {
            context.close(promise: nil)
            return
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(4 + response.extraHeaders.count)
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        for (name, value) in response.extraHeaders {
            headers.add(name: name, value: value)
        }
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))),
                      promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: response.body.count)
        buffer.writeBytes(response.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
            promise.futureResult.assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
