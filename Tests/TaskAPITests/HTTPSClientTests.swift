import Foundation
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
        defer { try? FileManager.default.removeItem(at: dir) }
        let (certificate, tls) = try Self.serverTLS(in: dir)
        let server = try await LoopbackHTTPServer.start(tls: tls, body: Self.answer)
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

    /// A server TLS context with a throwaway certificate in `dir` (created), and the
    /// certificate's PEM file for the client to trust.
    static func serverTLS(in dir: URL) throws -> (certificate: String, context: NIOSSLContext) {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let (certificate, key) = try selfSignedCertificate(in: dir)
        let context = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))))
        return (certificate, context)
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
