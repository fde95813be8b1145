import NIOCore
import NIOPosix

enum LoopbackPort {
    /// A loopback port that was free a moment ago, for a child's `--metrics-port` or `--callback-port`.
    static func free() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }
}
