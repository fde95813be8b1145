import NIOCore

/// Opens an HTTP `CONNECT` tunnel through a proxy on a fresh connection: sends
/// `CONNECT host:port`, reads the proxy's answer head (at most 16 KiB) and succeeds
/// `established` on a 2xx, after which the connection carries the provider's bytes
/// (TLS for https) and this handler is removed. Any other answer, a close, or no answer
/// within `timeout` fails it. The proxy's credentials go only into `Proxy-Authorization`.
final class ProxyTunnelHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Failure: Error, Equatable, CustomStringConvertible {
        case refused(status: Int)
        case malformed
        case closed
        case timeout

        var description: String {
            switch self {
            case .refused(let status): return "CONNECT refused with \(status)"
            case .malformed: return "CONNECT answer malformed or too long"
            case .closed: return "closed before the tunnel was open"
            case .timeout: return "no CONNECT answer in time"
            }
        }
    }

    private let request: String
    private let timeout: TimeAmount
    private let promise: EventLoopPromise<Void>
    private var answer: [UInt8] = []
    private var timer: Scheduled<Void>?
    private var sent = false

    var established: EventLoopFuture<Void> { promise.futureResult }

    init(target: String, authorization: String?, timeout: TimeAmount, promise: EventLoopPromise<Void>) {
        var request = "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n"
        if let authorization { request += "Proxy-Authorization: \(authorization)\r\n" }
        self.request = request + "\r\n"
        self.timeout = timeout
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { send(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
        context.fireChannelActive()
    }

    private func send(_ context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        let promise = self.promise
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) {
            promise.fail(Failure.timeout)
            channel.close(promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        answer.append(contentsOf: unwrapInboundIn(data).readableBytesView)
        guard let end = Self.headEnd(answer) else {
            if answer.count > 16 * 1024 { fail(context, .malformed) }
            return
        }
        // "HTTP/1.1 200 Connection established"; nothing may follow the head before we speak.
        guard answer.count >= 12, answer.starts(with: Array("HTTP/1.".utf8)),
              let status = Int(String(decoding: answer[9..<12], as: UTF8.self)) else {
            fail(context, .malformed)
            return
        }
        guard (200..<300).contains(status) else {
            fail(context, .refused(status: status))
            return
        }
        guard end + 4 == answer.count else {
            fail(context, .malformed)
            return
        }
        timer?.cancel()
        promise.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        promise.fail(Failure.closed)
        context.fireChannelInactive()
    }

    /// Also when the connection never opened: the promise never stays unfulfilled.
    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        promise.fail(Failure.closed)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        timer?.cancel()
        promise.fail(error)
        context.close(promise: nil)
    }

    private func fail(_ context: ChannelHandlerContext, _ failure: Failure) {
        timer?.cancel()
        promise.fail(failure)
        context.close(promise: nil)
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10
            && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }
}
