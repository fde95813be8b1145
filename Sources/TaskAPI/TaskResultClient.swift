import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// Calls `getTaskResult` on one provider over keep-alive HTTP/1.1 connections.
///
/// Two transports (`Configuration.transport`): `.nio` (the default), a connection pool
/// of our own on one SwiftNIO event loop that takes calls in batches and completes them
/// on the loop (`HTTP1ConnectionPool`); and `.asyncHTTPClient`, async-http-client's
/// pool, kept to measure against (BENCHMARKS.md). Both bound connections, time out
/// connect/read/request, never follow redirects (a key is never re-sent elsewhere),
/// and speak TLS for https.
///
/// Every call returns a classified `TaskOutcome`; nothing throws. Call `shutdown()`
/// when done; if you forget, `deinit` starts a non-blocking shutdown instead of crashing.
///
/// Logging: only the task id, the key's fingerprint, the outcome and timings.
/// The key itself is never logged, and async-http-client gets a no-op logger
/// because its trace logs are outside our control.
public final class TaskResultClient: Sendable {
    public let profile: ProviderProfile
    public let configuration: Configuration
    private let transport: Transport
    private let deadlines: CallDeadlines
    private let logger: Logger
    private let isShutDown = NIOLockedValueBox(false)

    private enum Transport: Sendable {
        /// The getTaskResult pool, and a one-connection pool for getBalance.
        case nio(HTTP1ConnectionPool, balance: HTTP1ConnectionPool)
        case asyncHTTPClient(HTTPClient, url: String, balanceURL: String)
    }

    /// - Throws: `TaskAPIError(.invalidURL)` when the profile's base URL is unusable,
    ///   `TaskAPIError(.invalidTLS)` when its TLS settings are.
    public init(
        profile: ProviderProfile = .ezCaptcha,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "ezpoll.taskapi"),
        eventLoopGroup: EventLoopGroup = HTTPClient.defaultEventLoopGroup
    ) throws {
        let url = profile.getTaskResultURL
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
              scheme == "https" || scheme == "http", let host = parsed.host, !host.isEmpty else {
            throw TaskAPIError(.invalidURL, "base URL '\(profile.baseURL)' of provider \(profile.name) is not an http(s) URL")
        }
        self.profile = profile
        self.configuration = configuration
        self.logger = logger
        let isHTTPS = scheme == "https"
        let port = parsed.port ?? (isHTTPS ? 443 : 80)
        let proxy = configuration.proxies.proxy(host: host, port: port, https: isHTTPS)
        // The transports' own deadline fires first; this one is the backstop above them.
        deadlines = CallDeadlines(timeout: TimeAmount(configuration.requestTimeout) + Self.deadlineGrace,
                                  on: eventLoopGroup.next())
        switch configuration.transport {
        case .nio:
            func target(_ url: String) -> HTTP1ConnectionPool.Target {
                let parsed = URL(string: url) ?? parsed
                var path = parsed.path.isEmpty ? "/" : parsed.path
                if let query = parsed.query { path += "?\(query)" }
                return HTTP1ConnectionPool.Target(
                    host: host, port: port, tls: isHTTPS ? configuration.tlsConfiguration : nil,
                    path: path, userAgent: configuration.userAgent, proxy: proxy)
            }
            let timeouts = HTTP1ConnectionPool.Timeouts(
                connect: TimeAmount(configuration.connectTimeout), read: TimeAmount(configuration.readTimeout),
                request: TimeAmount(configuration.requestTimeout), idle: TimeAmount(configuration.idleTimeout))
            do {
                let loop = eventLoopGroup.next()
                transport = .nio(
                    try HTTP1ConnectionPool(target: target(url), timeouts: timeouts, maxConnections: configuration.maxConnectionsPerHost,
                                            maxBodyBytes: configuration.maxBodyBytes, loop: loop),
                    balance: try HTTP1ConnectionPool(target: target(profile.getBalanceURL), timeouts: timeouts, maxConnections: 1,
                                                     maxBodyBytes: configuration.maxBodyBytes, loop: loop))
            } catch {
                throw TaskAPIError(.invalidTLS, "TLS for provider \(profile.name) could not be set up: \(error)")
            }
        case .asyncHTTPClient:
            var http = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(
                    connect: TimeAmount(configuration.connectTimeout),
                    read: TimeAmount(configuration.readTimeout)
                ),
                connectionPool: .init(
                    idleTimeout: TimeAmount(configuration.idleTimeout),
                    concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, configuration.maxConnectionsPerHost)
                ),
                decompression: .disabled
            )
            http.httpVersion = .http1Only
            http.tlsConfiguration = configuration.tlsConfiguration
            http.proxy = proxy.map { proxy in
                .server(host: proxy.host, port: proxy.port,
                        authorization: proxy.credentials.map { .basic(credentials: Data($0.utf8).base64EncodedString()) })
            }
            transport = .asyncHTTPClient(HTTPClient(eventLoopGroup: eventLoopGroup, configuration: http), url: url,
                                         balanceURL: profile.getBalanceURL)
        }
    }

    deinit {
        // Never let HTTPClient's debug precondition fire: shut down in the background.
        guard markShutDown() else { return }
        deadlines.shutdown()
        switch transport {
        case .nio(let pool, let balance):
            Task {
                await pool.shutdown()
                await balance.shutdown()
            }
        case .asyncHTTPClient(let client, _, _):
            client.shutdown(queue: .global()) { _ in }
        }
    }

    /// True the first time only.
    private func markShutDown() -> Bool {
        isShutDown.withLockedValue { down -> Bool in
            defer { down = true }
            return !down
        }
    }

    /// Closes the connections. Idempotent; in-flight calls end as transient failures.
    public func shutdown() async {
        guard markShutDown() else { return }
        switch transport {
        case .nio(let pool, let balance):
            await pool.shutdown()
            await balance.shutdown()
        case .asyncHTTPClient(let client, _, _):
            do {
                try await client.shutdown()
            } catch {
                logger.debug("HTTP client shutdown reported an error", metadata: ["error": "\(error)"])
            }
        }
        deadlines.shutdown()
    }

    /// How long after `requestTimeout` the client's own deadline ends a call the
    /// transport has not ended: the transport's deadline (a sweep every 50 ms in the NIO
    /// pool) reports first when it works.
    static let deadlineGrace = TimeAmount.milliseconds(250)

    /// Calls started and not yet ended (answered, failed or past their deadline).
    public var callsInProgress: Int { deadlines.inProgress }

    /// Polls one task once and classifies the result.
    public func getTaskResult(taskId: String, clientKey: ClientKey) async -> TaskOutcome {
        await withCheckedContinuation { continuation in
            start([TaskResultCall(taskId: taskId, clientKey: clientKey) { continuation.resume(returning: $0) }])
        }
    }

    /// Starts the calls; each completion runs once, by the call's deadline at the latest
    /// (on the pool's event loop for `.nio`).
    public func start(_ calls: [TaskResultCall]) {
        let started = ContinuousClock.now
        let tickets = deadlines.register(calls.map { call in
            { [self] outcome in call.completion(finish(taskId: call.taskId, clientKey: call.clientKey, started: started, outcome)) }
        })
        guard tickets.count == calls.count else { return } // shut down: already completed
        switch transport {
        case .nio(let pool, _):
            let profile = self.profile
            let deadlines = self.deadlines
            pool.execute(zip(calls, tickets).map { call, ticket in
                HTTP1ConnectionPool.Request(body: GetTaskResultRequest.body(taskId: call.taskId, clientKey: call.clientKey)) { result in
                    switch result {
                    case .success(let response):
                        deadlines.complete(ticket, OutcomeClassifier.classify(
                            status: response.status, retryAfter: response.retryAfter, body: response.body, profile: profile))
                    case .failure(let failure):
                        deadlines.complete(ticket, Self.classify(failure))
                    }
                }
            })
        case .asyncHTTPClient(let client, let url, _):
            for (call, ticket) in zip(calls, tickets) {
                let task = Task { [self] in
                    let body = GetTaskResultRequest.body(taskId: call.taskId, clientKey: call.clientKey)
                    deadlines.complete(ticket, await post(body, to: url, on: client) { [profile] status, retryAfter, body in
                        OutcomeClassifier.classify(status: status, retryAfter: retryAfter, body: body, profile: profile)
                    } failed: { $0 })
                }
                deadlines.onExpiry(ticket) { task.cancel() }
            }
        }
    }

    /// The account's balance (`POST /getBalance`, over the same transport, TLS, proxy and
    /// timeouts as the polls, one connection), classified as a poll's answer would be.
    public func getBalance(clientKey: ClientKey) async -> BalanceOutcome {
        let body = GetBalanceRequest.body(clientKey: clientKey)
        let profile = self.profile
        let outcome: BalanceOutcome
        switch transport {
        case .nio(_, let pool):
            outcome = await withCheckedContinuation { continuation in
                pool.execute([HTTP1ConnectionPool.Request(body: body) { result in
                    switch result {
                    case .success(let response):
                        continuation.resume(returning: OutcomeClassifier.classifyBalance(
                            status: response.status, retryAfter: response.retryAfter, body: response.body, profile: profile))
                    case .failure(let failure):
                        continuation.resume(returning: .failed(Self.classify(failure)))
                    }
                }])
            }
        case .asyncHTTPClient(let client, _, let url):
            outcome = await post(body, to: url, on: client) { status, retryAfter, body in
                OutcomeClassifier.classifyBalance(status: status, retryAfter: retryAfter, body: body, profile: profile)
            } failed: { .failed($0) }
        }
        if case .failed(let failure) = outcome { return .failed(failure.redacting(clientKey)) }
        return outcome
    }

    /// One POST over async-http-client, its answer classified by `classify` (status,
    /// `Retry-After`, body) and a transport error by `failed`.
    private func post<Outcome>(_ body: [UInt8], to url: String, on client: HTTPClient,
                               classify: (Int, String?, [UInt8]) -> Outcome, failed: (TaskOutcome) -> Outcome) async -> Outcome {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: TimeAmount(configuration.requestTimeout))
            let answer = try await response.body.collect(upTo: configuration.maxBodyBytes)
            return classify(Int(response.status.code), response.headers.first(name: "Retry-After"), Array(answer.readableBytesView))
        } catch {
            return failed(TaskResultClient.classify(error: error))
        }
    }

    /// Removes the key from what the provider echoed, and logs the call at debug level.
    private func finish(taskId: String, clientKey: ClientKey, started: ContinuousClock.Instant, _ outcome: TaskOutcome) -> TaskOutcome {
        let redacted = outcome.redacting(clientKey)
        if logger.logLevel <= .debug {
            let elapsed = ContinuousClock.now - started
            logger.debug("getTaskResult", metadata: [
                "taskId": "\(taskId)",
                "key": "\(clientKey.fingerprint)",
                "provider": "\(profile.name)",
                "outcome": "\(TaskResultClient.summary(redacted))",
                "ms": "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
            ])
        }
        return redacted
    }

    /// Maps a failure of the NIO transport to a transient outcome.
    static func classify(_ failure: HTTP1ConnectionPool.Failure) -> TaskOutcome {
        switch failure {
        case .connectTimeout, .readTimeout, .deadlineExceeded:
            return .failed(.transient(.timeout, retryAfter: nil), code: TaskOutcome.LocalCode.timeout, description: "\(failure)")
        case .connect, .closed, .shutDown:
            return .failed(.transient(.connection, retryAfter: nil), code: TaskOutcome.LocalCode.connection, description: "\(failure)")
        case .bodyTooLarge:
            return .failed(.transient(.badBody, retryAfter: nil), code: TaskOutcome.LocalCode.badBody,
                           description: "response body too long")
        case .malformed(let reason):
            return .failed(.transient(.badBody, retryAfter: nil), code: TaskOutcome.LocalCode.badBody,
                           description: "malformed HTTP response: \(reason)")
        }
    }

    /// Maps a transport error to a transient outcome.
    static func classify(error: Error) -> TaskOutcome {
        let reason: TransientReason
        var detail = String(describing: type(of: error))
        if let httpError = error as? HTTPClientError {
            detail = httpError.description
            switch httpError {
            case .connectTimeout, .readTimeout, .writeTimeout, .deadlineExceeded, .tlsHandshakeTimeout,
                 .getConnectionFromPoolTimeout, .socksHandshakeTimeout, .httpProxyHandshakeTimeout:
                reason = .timeout
            default:
                reason = .connection
            }
        } else if let parserError = error as? HTTPParserError {
            // A head or framing our parser would refuse too: the same class as there.
            return .failed(.transient(.badBody, retryAfter: nil), code: TaskOutcome.LocalCode.badBody,
                           description: "malformed HTTP response: \(parserError)")
        } else if error is NIOTooManyBytesError {
            return .failed(.transient(.badBody, retryAfter: nil), code: TaskOutcome.LocalCode.badBody,
                           description: "response body too long")
        } else if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            reason = .timeout
        } else if error is CancellationError {
            reason = .connection
            detail = "cancelled"
        } else {
            reason = .connection
            if let ioError = error as? IOError { detail = ioError.description }
        }
        let code = reason == .timeout ? TaskOutcome.LocalCode.timeout : TaskOutcome.LocalCode.connection
        return .failed(.transient(reason, retryAfter: nil), code: code, description: detail)
    }

    /// A short description of an outcome for logs (no solution bytes, no key).
    public static func summary(_ outcome: TaskOutcome) -> String {
        switch outcome {
        case .processing: return "processing"
        case .ready(let solution, _): return "ready(\(solution.bytes.count) bytes)"
        case .failed(let failureClass, let code, _, _): return "failed(\(failureClass), \(code))"
        }
    }
}
