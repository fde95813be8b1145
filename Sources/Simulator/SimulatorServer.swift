import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The fake provider on a real loopback HTTP/1.1 server (SwiftNIO).
///
/// Endpoints: `POST /createTask`, `POST /createTasks` (bulk: `{"clientKey","count"}`
/// → `taskIds`), `POST /getTaskResult`, `POST /getBalance`, `GET /stats`,
/// `POST /reset` (optional config patch body), `GET|POST /config` (deep-merge
/// patch), `GET /health`.
public final class SimulatorServer: Sendable {
    public let host: String
    /// The bound port (useful with port 0).
    public let port: Int
    private let engine: SimulatorEngine
    private let serverChannel: Channel
    private let children: NIOLockedValueBox<ChildChannels>

    struct ChildChannels: Sendable {
        var open: [ObjectIdentifier: Channel] = [:]
        var closing = false
    }

    /// `http://host:port`, the base URL to give a `ProviderProfile`.
    public var baseURL: String { "http://\(host):\(port)" }

    private init(host: String, port: Int, engine: SimulatorEngine, serverChannel: Channel,
                 children: NIOLockedValueBox<ChildChannels>) {
        self.host = host
        self.port = port
        self.engine = engine
        self.serverChannel = serverChannel
        self.children = children
    }

    /// Binds and starts serving. `port: 0` picks an ephemeral port.
    public static func start(
        config: SimulatorConfig = .init(),
        host: String = "127.0.0.1",
        port: Int = 0,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> SimulatorServer {
        try config.validate()
        let engine = SimulatorEngine(config: config, group: group)
        let children = NIOLockedValueBox(ChildChannels())
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                let accepted = children.withLockedValue { state -> Bool in
                    guard !state.closing else { return false }
                    state.open[id] = channel
                    return true
                }
                guard accepted else { return channel.close() }
                channel.closeFuture.whenComplete { _ in
                    children.withLockedValue { _ = $0.open.removeValue(forKey: id) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(SimulatorHTTPHandler(engine: engine))
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw SimulatorError.startFailed("cannot listen on \(host):\(port): \(error)")
        }
        guard let boundPort = channel.localAddress?.port else {
            try? await channel.close()
            throw SimulatorError.startFailed("no local address after bind")
        }
        return SimulatorServer(host: host, port: boundPort, engine: engine, serverChannel: channel, children: children)
    }

    /// Stops accepting, closes every open connection and waits for the listener to close.
    public func stop() async {
        let open = children.withLockedValue { state -> [Channel] in
            state.closing = true
            return Array(state.open.values)
        }
        try? await serverChannel.close()
        for channel in open {
            try? await channel.close()
        }
        await engine.shutdown()
    }

    /// Resolves when the listener closes (after `stop()`).
    public var closeFuture: EventLoopFuture<Void> { serverChannel.closeFuture }

    // MARK: - runtime control

    /// The current configuration.
    public var config: SimulatorConfig { engine.config }

    /// Changes the configuration at runtime (tasks and statistics are kept).
    /// An invalid result (see `SimulatorConfig.validate()`) is refused and thrown.
    public func updateConfig(_ change: (inout SimulatorConfig) -> Void) throws {
        var updated = engine.config
        change(&updated)
        try updated.validate()
        engine.apply(updated)
    }

    /// Forgets all tasks and statistics; optionally installs a new configuration.
    public func reset(config: SimulatorConfig? = nil) {
        engine.reset(config: config)
    }

    /// A statistics snapshot.
    public func stats() -> SimulatorStats {
        engine.stats()
    }

    /// The current API time in seconds.
    public func apiTime() -> Double {
        engine.withState { _, now in now }
    }

    /// Creates tasks as `POST /createTasks` would (key checks apply; no tasks on error);
    /// `callbackUrl`: where their callbacks go (else the configuration's).
    public func createTasks(count: Int, clientKey: String, callbackUrl: String? = nil) -> [String] {
        engine.withState { core, now in
            if case .created(let ids) = core.createTasks(clientKey: clientKey, count: count, callbackUrl: callbackUrl, now: now) { return ids }
            return []
        }
    }

    /// Creates one task that becomes ready (or unsolvable) `solveTime` API seconds from now.
    public func createTask(solveTime: Double, unsolvable: Bool = false) -> String {
        engine.withState { core, now in core.createTask(solveTime: solveTime, unsolvable: unsolvable, now: now) }
    }

    /// Direct access to the core under the lock (for scenarios and tests).
    public func withCore<T>(_ body: (inout SimulatorCore, _ now: Double) -> T) -> T {
        engine.withState(body)
    }
}
