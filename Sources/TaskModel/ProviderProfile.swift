/// What ezpoll needs to know about one provider. Profiles are plain data:
/// copy one and change fields (e.g. `baseURL` to point at the simulator).
///
/// The profile owns the polling defaults: `PollingPolicy(profile:)` is built from
/// it, and the defaults of `init` are the one place each shared value is written
/// (the built-in profiles state only where they differ).
public struct ProviderProfile: Sendable, Hashable {
    /// Canonical name, e.g. `ez-captcha`.
    public var name: String
    /// Scheme, host and optional port/path prefix; `/getTaskResult` is appended.
    public var baseURL: String
    /// Never poll one task more often than this.
    public var minPollInterval: Duration
    /// The interval the provider asks for between polls of one task.
    public var defaultPollInterval: Duration
    /// Maximum getTaskResult calls for one task.
    public var maxPolls: Int
    /// Suggested wait between task creation and the first poll.
    public var initialDelay: Duration
    /// How long after creation a result can still be fetched.
    public var resultWindow: Duration
    /// How long to stop all calls after `ERROR_IP_BANNED`.
    public var ipBanPause: Duration
    /// Stop polling this long before the result window closes (request latency, clock skew).
    public var safetyMargin: Duration
    /// First backoff step after a transient error; doubled per consecutive attempt.
    public var backoffBase: Duration
    /// Cap of one backoff step.
    public var backoffMax: Duration
    /// Provider-specific codes; they override `ErrorCodeClass.common`.
    public var extraErrorCodes: [String: ErrorCodeClass]
    /// How long a solved token stays usable, by task type (`expiresAt` in solutions).
    public var tokenLifetimes: TokenLifetimes

    public init(
        name: String,
        baseURL: String,
        minPollInterval: Duration = .seconds(1),
        defaultPollInterval: Duration = .seconds(3),
        maxPolls: Int = 120,
        initialDelay: Duration = .seconds(5),
        resultWindow: Duration = .seconds(300),
        ipBanPause: Duration = .seconds(600),
        safetyMargin: Duration = .seconds(5),
        backoffBase: Duration = .seconds(3),
        backoffMax: Duration = .seconds(30),
        extraErrorCodes: [String: ErrorCodeClass] = [:],
        tokenLifetimes: TokenLifetimes = .standard
    ) {
        self.name = name
        self.baseURL = baseURL
        self.minPollInterval = minPollInterval
        self.defaultPollInterval = defaultPollInterval
        self.maxPolls = maxPolls
        self.initialDelay = initialDelay
        self.resultWindow = resultWindow
        self.ipBanPause = ipBanPause
        self.safetyMargin = safetyMargin
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
        self.extraErrorCodes = extraErrorCodes
        self.tokenLifetimes = tokenLifetimes
    }

    /// The class of a provider `errorCode`: the profile's extra codes first,
    /// then the common table; unknown codes are terminal for the task.
    public func classify(errorCode: String) -> ErrorCodeClass {
        extraErrorCodes[errorCode] ?? ErrorCodeClass.common[errorCode] ?? .task
    }

    /// A copy with another base URL (e.g. a simulator on loopback).
    public func with(baseURL: String) -> ProviderProfile {
        var copy = self
        copy.baseURL = baseURL
        return copy
    }

    /// The getTaskResult endpoint URL.
    public var getTaskResultURL: String { url(of: "getTaskResult") }

    /// The getBalance endpoint URL.
    public var getBalanceURL: String { url(of: "getBalance") }

    private func url(of method: String) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/" + method
    }
}
