import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `ezpoll run`'s operator port:
///
/// | request | answer |
/// |---|---|
/// | `GET /metrics` | Prometheus text format 0.0.4 |
/// | `GET /health/live` | 200 while live, else 503 (JSON) |
/// | `GET /health/ready` | 200 when ready, else 503 with the reasons (JSON) |
///
/// Anything else: 404 (405 for another method on a known path). No endpoint takes a body.
public final class ObservabilityServer: Sendable {
    private let server: EndpointServer

    public var host: String { server.host }
    /// The bound port (useful with port 0).
    public var port: Int { server.port }
    /// `http://host:port`.
    public var baseURL: String { "http://\(host):\(port)" }

    private init(server: EndpointServer) {
        self.server = server
    }

    /// Binds and serves `source`. `port: 0` picks a free port.
    public static func start(
        source: any ObservabilitySource, host: String, port: Int, logger: Logger,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ObservabilityServer {
        let server = try await EndpointServer.start(host: host, port: port, limits: .init(), group: group) { request in
            respond(to: request, source: source)
        }
        logger.info("metrics and health endpoints listening", metadata: ["address": "\(host):\(server.port)"])
        return ObservabilityServer(server: server)
    }

    /// Stops accepting and closes open connections.
    public func stop() async {
        await server.stop()
    }

    private static func respond(to request: EndpointServer.Request, source: any ObservabilitySource) -> EndpointServer.Response {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        guard ["/metrics", "/health/live", "/health/ready"].contains(path) else { return .init(.notFound, text: "not found\n") }
        guard request.method == .GET || request.method == .HEAD else { return .init(.methodNotAllowed, text: "GET only\n") }
        if path == "/metrics" {
            return .init(.ok, contentType: "text/plain; version=0.0.4; charset=utf-8", source.metricsExposition())
        }
        let health = source.health()
        let live = path == "/health/live"
        let ok = live ? health.isLive : health.isReady
        return .init(ok ? .ok : .serviceUnavailable, contentType: "application/json", Array(health.json(liveness: live).utf8))
    }
}
