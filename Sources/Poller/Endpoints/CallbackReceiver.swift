import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `ezpoll run --callback-port`: where providers POST "task done" callbacks
/// (`ProviderCallback` for paths and bodies). A callback for a task in flight makes its
/// next poll due now (`Pipeline.callbackArrived`); nothing is published from a callback.
///
/// Answers: 200 for every well-formed callback, known task or not (a provider that got an
/// error would only send it again); 403 for a wrong or missing token, 400 without a task
/// id, 413 above the body limit, 404 elsewhere. Never logs a path (it holds the token)
/// or a body.
public final class CallbackReceiver: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// The secret each callback path must end with (`EZPOLL_CALLBACK_TOKEN`); nil: none.
        public var token: String?
        /// Default: 64 KiB (a getTaskResult answer with a solution is a few KiB).
        public var maxBodyBytes = 64 * 1024

        public init(host: String, port: Int, token: String? = nil) {
            self.host = host
            self.port = port
            self.token = token
        }
    }

    private let server: EndpointServer
    /// The bound port (useful with port 0).
    public var port: Int { server.port }

    private init(server: EndpointServer) {
        self.server = server
    }

    /// `relay`: where callbacks for tasks this member does not hold go (`CallbackRelay`); nil: nowhere.
    public static func start(_ configuration: Configuration, pipeline: Pipeline, relay: CallbackRelay? = nil, logger: Logger,
                             group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> CallbackReceiver {
        let token = configuration.token
        let limits = EndpointServer.Limits(maxBodyBytes: configuration.maxBodyBytes)
        let server = try await EndpointServer.start(host: configuration.host, port: configuration.port, limits: limits, group: group) { request in
            guard !request.bodyTooLarge else { return reject(.tooLarge, pipeline: pipeline) }
            switch ProviderCallback.parse(method: request.method.rawValue, uri: request.uri, body: request.body, token: token) {
            case .success(let callback):
                switch pipeline.callbackArrived(callback) {
                case .early, .unknownTask: relay?.relay(callback) // perhaps another member's
                case .pollDue, .afterCall, .alreadyDue, .finished, .overLimit, .unknownProvider: break
                }
                return .init(.ok, contentType: "application/json", Array(#"{"ok":true}"#.utf8))
            case .failure(let rejection):
                return reject(rejection, pipeline: pipeline)
            }
        }
        logger.info("callback receiver listening", metadata: [
            "address": "\(configuration.host):\(server.port)", "path": "\(ProviderCallback.pathPrefix)<provider>\(token == nil ? "" : "/<token>")",
        ])
        return CallbackReceiver(server: server)
    }

    /// Stops accepting and closes open connections.
    public func stop() async {
        await server.stop()
    }

    private static func reject(_ rejection: ProviderCallback.Rejection, pipeline: Pipeline) -> EndpointServer.Response {
        pipeline.metrics.callback(provider: "unknown", result: rejection.rawValue)
        switch rejection {
        case .notFound: return .init(.notFound, text: "not found\n")
        case .methodNotAllowed: return .init(.methodNotAllowed, text: "POST only\n")
        case .forbidden: return .init(.forbidden, text: "forbidden\n")
        case .tooLarge: return .init(.payloadTooLarge, text: "body too large\n")
        case .malformed: return .init(.badRequest, text: "no task id\n")
        }
    }
}
