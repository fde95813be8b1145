import NIOSSL

extension TaskResultClient {
    /// Transport settings. Defaults suit the real providers over HTTPS.
    public struct Configuration: Sendable, Hashable {
        /// TCP (+TLS) connect timeout.
        public var connectTimeout: Duration
        /// Longest silence while waiting for response bytes.
        public var readTimeout: Duration
        /// Deadline for one whole call (connect, send, receive).
        public var requestTimeout: Duration
        /// Most keep-alive HTTP/1.1 connections per host: a hard limit in the NIO pool,
        /// async-http-client's soft limit (it may open more while others close).
        public var maxConnectionsPerHost: Int
        /// Idle keep-alive connections are closed after this.
        public var idleTimeout: Duration
        /// Response bodies larger than this fail the call as a bad body. With the head
        /// limit (16 KiB of head, 1xx answers, chunk framing and trailers) it bounds what
        /// one call buffers; a getTaskResult answer is a few KiB.
        public var maxBodyBytes: Int
        /// Sent as `User-Agent`.
        public var userAgent: String
        /// Which HTTP/1.1 client carries the calls.
        public var transport: Transport
        /// PEM files of certificate authorities trusted besides the system's (https only).
        public var additionalTrustRootFiles: [String] = []
        /// The egress proxy, per provider host (CONNECT tunnel in both transports).
        /// Default: `.direct`; `ezpoll run` fills it from `--proxy` and the environment.
        public var proxies: ProxyConfiguration = .direct

        /// TLS for https, the same for both transports: full verification against the
        /// system's roots and `additionalTrustRootFiles`.
        var tlsConfiguration: TLSConfiguration {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = additionalTrustRootFiles.map { .file($0) }
            return tls
        }

        public enum Transport: String, Sendable, Hashable, CaseIterable {
            /// Our connection pool on one SwiftNIO event loop: batches in, completions on the loop.
            case nio
            /// async-http-client: a task and two async hops per call.
            case asyncHTTPClient = "async-http-client"
        }

        public init(
            connectTimeout: Duration = .seconds(5),
            readTimeout: Duration = .seconds(10),
            requestTimeout: Duration = .seconds(15),
            maxConnectionsPerHost: Int = 32,
            idleTimeout: Duration = .seconds(60),
            maxBodyBytes: Int = 256 << 10,
            userAgent: String = EzpollVersion.userAgent,
            transport: Transport = .nio
        ) {
            self.connectTimeout = connectTimeout
            self.readTimeout = readTimeout
            self.requestTimeout = requestTimeout
            self.maxConnectionsPerHost = maxConnectionsPerHost
            self.idleTimeout = idleTimeout
            self.maxBodyBytes = maxBodyBytes
            self.userAgent = userAgent
            self.transport = transport
        }
    }
}
