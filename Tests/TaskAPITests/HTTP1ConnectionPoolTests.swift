import Foundation
import Testing
@testable import TaskAPI

/// The NIO transport against servers that misbehave at the connection level.
@Suite("HTTP/1.1 connection pool")
struct HTTP1ConnectionPoolTests {
    private static let processing = #"{"errorId":0,"status":"processing"}"#

    private func client(_ server: LoopbackHTTPServer, readTimeout: Duration = .seconds(10)) throws -> TaskResultClient {
        var configuration = TaskResultClient.Configuration(transport: .nio)
        configuration.maxConnectionsPerHost = 1
        configuration.readTimeout = readTimeout
        return try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: "http://127.0.0.1:\(server.port)"),
                                    configuration: configuration)
    }

    @Test func aRequestLostToTheServersIdleCloseGoesOutAgainOnAFreshConnection() async throws {
        // Each connection answers one request; a second request on it is met with a close,
        // as when a server's keep-alive timeout races the next request.
        let server = try await LoopbackHTTPServer.start(answersPerConnection: 1, body: Self.processing)
        let client = try client(server)
        for _ in 0..<3 {
            #expect(await client.getTaskResult(taskId: "t", clientKey: ClientKey("k")) == .processing)
        }
        await client.shutdown()
        #expect(server.connections.withLockedValue { $0 } >= 3, "every answer came on a connection of its own")
        try await server.stop()
    }

    @Test func aServerThatNeverAnswersIsAReadTimeout() async throws {
        let server = try await LoopbackHTTPServer.start(answersPerConnection: 0, body: Self.processing)
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
