import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A provider that misbehaves on purpose, on a real loopback server: it reads
/// getTaskResult requests like any provider and answers some of them with bytes no
/// honest server sends, to show that neither HTTP client lets a peer grow the process,
/// hold a call open or keep a task from its outcome (ARCHITECTURE.md, "Bounded memory").
///
/// The task id says what to do: `ok.N` is a normal task (`processing` on its first poll,
/// then ready with the solution `sol-ok.N`); `MODE.once.N` misbehaves on its first poll
/// only and is then a normal task; `MODE.always.N` misbehaves on every poll.
public final class HostileProvider: Sendable {
    public enum Misbehaviour: String, CaseIterable, Sendable {
        /// `100 Continue` heads without end.
        case informationalFlood = "info-flood"
        /// A chunked answer whose trailer section never ends.
        case trailerFlood = "trailer-flood"
        /// A head whose header lines never end.
        case headerFlood = "header-flood"
        /// One-byte chunks, each with a 1,000-byte chunk extension: 16 MiB of them, then
        /// silence with the connection open. A client that skips extensions reads about
        /// 16 KiB of body from it, below any body limit, and must end the call by its
        /// timeout; one that counts the framing refuses it at its body limit. (Without
        /// the cap, which of the two ends a skipping client's call first would depend
        /// on how fast the machine reads.)
        case chunkExtensionFlood = "chunk-ext-flood"
        /// A head with bare LF line ends, then silence with the connection open.
        case bareLF = "bare-lf"
        /// A chunk size of 2^60 − 1, then bytes without end.
        case absurdChunkSize = "absurd-chunk"
        /// One header line of 1 MiB.
        case oversizedHead = "oversized-head"
        /// `Content-Length` of 1 GiB.
        case hugeBody = "huge-body"
        /// The head, then one body byte every `slowByteInterval` ("slowloris").
        case slowBody = "slow-body"
        /// Reads the request and never answers.
        case hang
        /// Half of the body, then a TCP reset.
        case resetMidBody = "reset-mid-body"
    }

    public var port: Int { listener.port }
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    private let listener: LoopbackListener
    private let state: NIOLockedValueBox<State>

    struct State {
        var polls: [String: Int] = [:]
        var bytesSent = 0
        var requests = 0
        var keys: Set<String> = []
    }

    /// Bytes the server wrote, over all connections.
    public var bytesSent: Int { state.withLockedValue { $0.bytesSent } }
    /// getTaskResult requests read.
    public var requests: Int { state.withLockedValue { $0.requests } }
    /// Every clientKey the requests carried (to check a key reaches only its provider).
    public var clientKeys: Set<String> { state.withLockedValue { $0.keys } }

    /// The solution a normal answer carries for `taskId`.
    public static func solution(of taskId: String) -> String { "sol-\(taskId)" }

    /// - Parameters:
    ///   - floodBytes: how much a flood sends at most before it closes.
    ///   - slowByteInterval: the pause between the slow body's bytes.
    public static func start(floodBytes: Int = 128 << 20, slowByteInterval: TimeAmount = .seconds(2)) async throws -> HostileProvider {
        let state = NIOLockedValueBox(State())
        let listener = try await LoopbackListener.start { pipeline in
            try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
            try pipeline.addHandler(Handler(state: state, floodBytes: floodBytes, slowByteInterval: slowByteInterval))
        }
        return HostileProvider(listener: listener, state: state)
    }

    private init(listener: LoopbackListener, state: NIOLockedValueBox<State>) {
        self.listener = listener
        self.state = state
    }

    public func stop() async throws {
        try await listener.stop()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        let state: NIOLockedValueBox<State>
        let floodBytes: Int
        let slowByteInterval: TimeAmount
        var body = ByteBuffer()
        var slow: RepeatedTask?

        init(state: NIOLockedValueBox<State>, floodBytes: Int, slowByteInterval: TimeAmount) {
            self.state = state
            self.floodBytes = floodBytes
            self.slowByteInterval = slowByteInterval
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head:
                body.clear()
            case .body(var part):
                body.writeBuffer(&part)
            case .end:
                answer(channel: context.channel)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            slow?.cancel()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        private func answer(channel: any Channel) {
            let request = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
            let taskId = request?["taskId"] as? String ?? ""
            let poll: Int = state.withLockedValue { s in
                s.requests += 1
                if let key = request?["clientKey"] as? String { s.keys.insert(key) }
                s.polls[taskId, default: 0] += 1
                return s.polls[taskId]!
            }
            let parts = taskId.split(separator: ".")
            if parts.count == 3, let mode = Misbehaviour(rawValue: String(parts[0])),
               parts[1] == "always" || poll == 1 {
                misbehave(mode, on: channel)
                return
            }
            let json = poll == 1
                ? #"{"errorId":0,"status":"processing"}"#
                : #"{"errorId":0,"status":"ready","solution":{"gRecaptchaResponse":"\#(HostileProvider.solution(of: taskId))"}}"#
            write(channel, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)")
        }

        private func misbehave(_ mode: Misbehaviour, on channel: any Channel) {
            let processing = #"{"errorId":0,"status":"processing"}"#
            switch mode {
            case .informationalFlood:
                flood(channel, head: "", unit: "HTTP/1.1 100 Continue\r\n\r\n")
            case .trailerFlood:
                let chunk = String(processing.utf8.count, radix: 16)
                flood(channel, head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\(chunk)\r\n\(processing)\r\n0\r\n",
                      unit: "X-Trailer: " + String(repeating: "t", count: 100) + "\r\n")
            case .headerFlood:
                flood(channel, head: "HTTP/1.1 200 OK\r\n", unit: "X-Header: " + String(repeating: "h", count: 100) + "\r\n")
            case .chunkExtensionFlood:
                flood(channel, head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                      unit: "1;ext=" + String(repeating: "e", count: 1000) + "\r\n{\r\n",
                      limit: min(floodBytes, 16 << 20), end: .silence)
            case .bareLF:
                write(channel, "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: \(processing.utf8.count)\n\n\(processing)")
            case .absurdChunkSize:
                flood(channel, head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n",
                      unit: String(repeating: "a", count: 1024))
            case .oversizedHead:
                flood(channel, head: "HTTP/1.1 200 OK\r\nX-Big: ", unit: String(repeating: "b", count: 1024),
                      limit: 1 << 20, end: .close(tail: "\r\nContent-Length: 0\r\n\r\n"))
            case .hugeBody:
                flood(channel, head: "HTTP/1.1 200 OK\r\nContent-Length: \(1 << 30)\r\n\r\n", unit: String(repeating: "z", count: 1024))
            case .slowBody:
                write(channel, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
                let state = self.state
                slow = channel.eventLoop.scheduleRepeatedTask(initialDelay: slowByteInterval, delay: slowByteInterval) { task in
                    guard channel.isActive else {
                        task.cancel()
                        return
                    }
                    Self.write(channel, " ", counting: state)
                }
            case .hang:
                break
            case .resetMidBody:
                let half = String(processing.prefix(processing.utf8.count / 2))
                channel.writeAndFlush(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: \(processing.utf8.count)\r\n\r\n\(half)"))
                    .whenComplete { _ in
                        // SO_LINGER 0: the close is a reset, not a FIN.
                        let reset = (channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
                            ?? channel.eventLoop.makeSucceededVoidFuture()
                        reset.whenComplete { _ in channel.close(promise: nil) }
                    }
                count(half.utf8.count + 60)
            }
        }

        private func count(_ bytes: Int) {
            state.withLockedValue { $0.bytesSent += bytes }
        }

        private func write(_ channel: any Channel, _ text: String) {
            Self.write(channel, text, counting: state)
        }

        private static func write(_ channel: any Channel, _ text: String, counting state: NIOLockedValueBox<State>) {
            state.withLockedValue { $0.bytesSent += text.utf8.count }
            channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
        }

        /// How a flood ends once it has sent its limit.
        enum FloodEnd {
            /// Writes the text and closes the connection.
            case close(tail: String)
            /// Sends nothing more and keeps the connection open.
            case silence
        }

        /// Writes `head`, then `unit` over and over (about 64 KiB per write, each after the
        /// last one left) until `limit` bytes or the peer closes, then ends as `end` says.
        private func flood(_ channel: any Channel, head: String, unit: String, limit: Int? = nil, end: FloodEnd = .close(tail: "")) {
            let limit = limit ?? floodBytes
            let repeats = max(1, 65536 / unit.utf8.count)
            var filling = ByteBuffer()
            for _ in 0..<repeats { filling.writeString(unit) }
            let block = filling
            write(channel, head)
            let state = self.state
            @Sendable func next(_ sent: Int) {
                guard channel.isActive else { return }
                guard sent < limit else {
                    if case .close(let tail) = end {
                        state.withLockedValue { $0.bytesSent += tail.utf8.count }
                        channel.writeAndFlush(ByteBuffer(string: tail)).whenComplete { _ in channel.close(promise: nil) }
                    }
                    return
                }
                state.withLockedValue { $0.bytesSent += block.readableBytes }
                channel.writeAndFlush(block).whenComplete { result in
                    if case .success = result { next(sent + block.readableBytes) }
                }
            }
            next(0)
        }
    }
}
