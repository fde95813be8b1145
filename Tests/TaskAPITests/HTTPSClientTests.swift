import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing
@testable import TaskAPI

/// Real providers speak HTTPS: both transports call a TLS server on loopback whose
/// throwaway certificate (made by openssl) is trusted only when the client is told to.
@Suite("HTTPS")
struct HTTPSClientTests {
    private static let answer = #"{"errorId":0,"status":"processing"}"#

    @Test(arguments: TaskResultClient.Configuration.Transport.allCases)
    func verifiedTLSAndRefusedUntrustedCertificate(transport: TaskResultClient.Configuration.Transport) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ezpoll-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (certificate, key) = try Self.selfSignedCertificate(in: dir)
        let server = try await TLSServer.start(certificate: certificate, key: key, answer: Self.answer)
        let profile = ProviderProfile.ezCaptcha.with(baseURL: "https://localhost:\(server.port)")

        var trusting = TaskResultClient.Configuration(transport: transport)
        trusting.additionalTrustRootFiles = [certificate]
        let client = try TaskResultClient(profile: profile, configuration: trusting)
        for _ in 0..<3 { // the second and third reuse the connection
            #expect(await client.getTaskResult(taskId: "t-1", clientKey: ClientKey("k")) == .processing)
        }
        await client.shutdown()
        #expect(server.requests.withLockedValue { $0 } == ["POST /getTaskResult"] + Array(repeating: "POST /getTaskResult", count: 2))

        // Without the trust root the certificate is refused: a transient failure, no request sent.
        let untrusting = try TaskResultClient(profile: profile, configuration: .init(transport: transport))
        let outcome = await untrusting.getTaskResult(taskId: "t-2", clientKey: ClientKey("k"))
        await untrusting.shutdown()
        guard case .failed(.transient(.connection, _), _, _, _) = outcome else {
            Issue.record("expected a transient connection failure, got \(outcome)")
            return
        }
        #expect(server.requests.withLockedValue { $0 }.count == 3)
        try await server.stop()
    }

    /// A certificate for `localhost` and 127.0.0.1, valid for a day.
    private static func selfSignedCertificate(in dir: URL) throws -> (certificate: String, key: String) {
        let certificate = dir.appendingPathComponent("cert.pem").path
        let key = dir.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate,
                             "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0, "openssl could not make a certificate (scripts/setup.sh installs it)")
        return (certificate, key)
    }
}

/// An HTTPS server on 127.0.0.1 that answers every request with one JSON body and
/// records each request line.
private struct TLSServer {
    let channel: any Channel
    let group: MultiThreadedEventLoopGroup
    let requests: NIOLockedValueBox<[String]>
    var port: Int { channel.localAddress?.port ?? 0 }

    static func start(certificate: String, key: String, answer: String) async throws -> TLSServer {
        let context = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let requests = NIOLockedValueBox<[String]>([])
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Answer(body: answer, requests: requests))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TLSServer(channel: channel, group: group, requests: requests)
    }

    func stop() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    final class Answer: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let body: String
        let requests: NIOLockedValueBox<[String]>

        init(body: String, requests: NIOLockedValueBox<[String]>) {
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
                var headers = HTTPHeaders([("Content-Type", "application/json")])
                headers.add(name: "Content-Length", value: String(body.utf8.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
