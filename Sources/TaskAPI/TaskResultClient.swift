import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Calls `getTaskResult` on one provider through one shared async-http-client
/// `HTTPClient` (bounded keep-alive pool, connect/read/request timeouts,
/// redirects disabled so a key is never re-sent elsewhere).
///
/// Every call returns a classified `TaskOutcome`; nothing throws. Call
/// `shutdown()` when done; if you forget, `deinit` starts a non-blocking
/// shutdown instead of crashing.
///
/// Logging: only the task id, the key's fingerprint, the outcome and timings.
/// The key itself is never logged, and async-http-client gets a no-op logger
/// because its trace logs are outside our control.
public final class TaskResultClient: Sendable {
    public let profile: ProviderProfile
    public let configuration: Configuration
    private let httpClient: HTTPClient
    private let logger: Logger
    private let url: String
    private let isShutDown = NIOLockedValueBox(false)

    /// - Throws: `TaskAPIError(.invalidURL)` when the profile's base URL is unusable.
    public init(
        profile: ProviderProfile = .ezCaptcha,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "ezpoll.taskapi"),
        eventLoopGroup: EventLoopGroup = HTTPClient.defaultEventLoopGroup
    ) throws {
        let url = profile.getTaskResultURL
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
              scheme == "https" || scheme == "http", parsed.host != nil else {
            throw TaskAPIError(.invalidURL, "base URL '\(profile.baseURL)' of provider \(profile.name) is not an http(s) URL")
        }
        self.profile = profile
        self.configuration = configuration
        self.logger = logger
        self.url = url
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
        http.httpVersion = .automatic
        self.httpClient = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: http)
    }

    deinit {
        // Never let HTTPClient's debug precondition fire: shut down in the background.
        let alreadyDown = isShutDown.withLockedValue { down -> Bool in
            defer { down = true }
            return down
        }
        if !alreadyDown {
            httpClient.shutdown(queue: .global()) { _ in }
        }
    }

    /// Shuts the HTTP client down. Idempotent; in-flight calls end as transient failures.
    public func shutdown() async {
        let alreadyDown = isShutDown.withLockedValue { down -> Bool in
            defer { down = true }
            return down
        }
        guard !alreadyDown else { return }
        do {
            try await httpClient.shutdown()
        } catch {
            logger.debug("HTTP client shutdown reported an error", metadata: ["error": "\(error)"])
        }
    }

    /// Polls one task once and classifies the result.
    public func getTaskResult(taskId: String, clientKey: ClientKey) async -> TaskOutcome {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        request.body = .bytes(ByteBuffer(bytes: GetTaskResultRequest.body(taskId: taskId, clientKey: clientKey)))

        let started = ContinuousClock.now
        let outcome: TaskOutcome
        do {
            let response = try await httpClient.execute(request, timeout: TimeAmount(configuration.requestTimeout))
            let body = try await response.body.collect(upTo: configuration.maxBodyBytes)
            outcome = OutcomeClassifier.classify(
                status: Int(response.status.code),
                headers: response.headers,
                body: Array(body.readableBytesView),
                profile: profile
            )
        } catch {
            outcome = TaskResultClient.classify(error: error)
        }
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

    static func summary(_ outcome: TaskOutcome) -> String {
        switch outcome {
        case .processing: return "processing"
        case .ready(let solution): return "ready(\(solution.bytes.count) bytes)"
        case .failed(let failureClass, let code, _, _): return "failed(\(failureClass), \(code))"
        }
    }
}
