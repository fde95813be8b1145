import NIOCore
import NIOPosix

/// A TCP listener on 127.0.0.1 (any free port) with an event loop of its own, for the
/// small servers of the tests and the bench: the hostile provider, a canned answer, a
/// CONNECT proxy. `configure` sets up each accepted connection's pipeline.
public struct LoopbackListener: Sendable {
    public let channel: any Channel
    private let group: MultiThreadedEventLoopGroup
    public var port: Int { channel.localAddress?.port ?? 0 }

    public static func start(
        configure: @escaping @Sendable (_ pipeline: ChannelPipeline.SynchronousOperations) throws -> Void
    ) async throws -> LoopbackListener {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try configure(channel.pipeline.syncOperations) }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            return LoopbackListener(channel: channel, group: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Closes the listener (open connections close with its event loop).
    public func stop() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }
}
