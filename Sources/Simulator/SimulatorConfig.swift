/// Everything that shapes the simulator's behaviour. All durations are in
/// seconds of *API time* unless the name says `real`: API time runs
/// `timeScale` times faster than the wall clock, so with `timeScale = 60` a
/// 15 s solve takes 0.25 s. Fault delays and `Retry-After` are real seconds,
/// because they act on the client's own timers.
///
/// Changeable at runtime (`SimulatorServer.updateConfig`, `POST /config`);
/// existing tasks keep the solve times they drew.
public struct SimulatorConfig: Sendable, Hashable, Codable {
    /// API seconds per real second (≥ 1 speeds the simulation up).
    public var timeScale: Double = 1
    /// Seeds task ids, solve times and fault draws.
    public var seed: UInt64 = 1
    /// Solve-time distribution (API seconds).
    public var solveTime: SolveTimeDistribution = .init()
    /// Fraction of tasks that end with ERROR_CAPTCHA_UNSOLVABLE at their solve time.
    public var unsolvableFraction: Double = 0
    /// A result can be fetched for this long after creation; later: ERROR_TASKID_INVALID.
    public var resultWindow: Double = 300
    /// Tasks are forgotten this long after their window closed (their poll
    /// counts stay in the statistics); later polls of them count as unknown ids.
    /// Keeps long benchmarks from growing the table without bound.
    public var retainAfterWindow: Double = 3600
    /// Accepted keys; nil accepts any key.
    public var validKeys: [String]? = nil
    /// Keys that exist but have no money: ERROR_ZERO_BALANCE.
    public var zeroBalanceKeys: [String] = []
    /// Balance reported by getBalance for a funded key.
    public var balance: Double = 100
    /// `uuid` (ez-captcha, capsolver) or `integer` (anti-captcha style, above 2^31, sent as a JSON number).
    public var taskIdStyle: TaskIdStyle = .uuid
    /// Per-task minimum interval between polls; closer polls get ERROR_TOO_MUCH_REQUESTS.
    public var minPollInterval: Double? = nil
    /// Per-task poll cap; later polls get ERROR_TASKID_INVALID (the result is dropped).
    public var maxPollsPerTask: Int? = nil
    /// The IP-ban rule; nil disables it.
    public var ban: BanRule? = nil
    /// Fault injection for getTaskResult.
    public var faults: FaultConfig = .init()
    /// Provider callbacks: a POST when a task is done (Anti-Captcha's `callbackUrl`).
    public var callbacks: CallbackConfig = .init()

    public init() {}

    /// When and how a task's callback is sent: to the `callbackUrl` its createTask named,
    /// else to `url`; none without either. Drawn once per task, when it is created.
    public struct CallbackConfig: Sendable, Hashable, Codable {
        /// Where callbacks go for tasks whose createTask names no `callbackUrl`; nil: only those that do.
        public var url: String? = nil
        /// Chance that a task's callback is never sent.
        public var lossProbability: Double = 0
        /// Chance that it is sent twice (the copy up to `maxDelay` later).
        public var duplicateProbability: Double = 0
        /// Chance that a forged "ready" callback for the task arrives while it is still
        /// being solved (its real callback is drawn as usual).
        public var forgedProbability: Double = 0
        /// API seconds from the task being done to its callback, uniform in [min, max].
        public var minDelay: Double = 0
        public var maxDelay: Double = 0

        public init() {}

        public var isOff: Bool { url == nil }
    }

    public enum TaskIdStyle: String, Sendable, Hashable, Codable {
        case uuid
        case integer
    }

    /// Solve times: lognormal (median, sigma of ln) or fixed (= median),
    /// clipped to [min, max].
    public struct SolveTimeDistribution: Sendable, Hashable, Codable {
        /// The simulator's, the bench's and the demo's solve times unless told otherwise.
        /// Default: lognormal, median 15 s, sigma 0.7, clipped to [2, 120] s.
        public static let standard = SolveTimeDistribution(kind: .lognormal, median: 15, sigma: 0.7, min: 2, max: 120)

        public var kind: Kind
        public var median: Double
        public var sigma: Double
        public var min: Double
        public var max: Double

        public enum Kind: String, Sendable, Hashable, Codable {
            case lognormal
            case fixed
        }

        public init() { self = .standard }

        /// Unset parts are the `standard` one's.
        public init(kind: Kind = standard.kind, median: Double = standard.median, sigma: Double = standard.sigma,
                    min: Double = standard.min, max: Double = standard.max) {
            self.kind = kind
            self.median = median
            self.sigma = sigma
            self.min = min
            self.max = max
        }

        /// Every task takes exactly `seconds` (API time).
        public static func fixed(_ seconds: Double) -> SolveTimeDistribution {
            .init(kind: .fixed, median: seconds, sigma: 0, min: 0, max: .greatestFiniteMagnitude)
        }
    }

    /// More than `maxErrors` error responses within `window` seconds bans the
    /// (single, loopback) client for `duration` seconds: every call then
    /// answers ERROR_IP_BANNED. Errors that count: key errors, invalid or
    /// expired task ids, too-frequent polls, polls past the cap.
    public struct BanRule: Sendable, Hashable, Codable {
        public var maxErrors: Int
        public var window: Double
        public var duration: Double

        public init(maxErrors: Int, window: Double, duration: Double) {
            self.maxErrors = maxErrors
            self.window = window
            self.duration = duration
        }
    }

    /// Probabilities (0…1) drawn independently per getTaskResult request.
    public struct FaultConfig: Sendable, Hashable, Codable {
        /// Close the connection without answering.
        public var dropProbability: Double = 0
        /// HTTP 500 with an HTML body.
        public var http500Probability: Double = 0
        /// HTTP 503 with an HTML body.
        public var http503Probability: Double = 0
        /// HTTP 429 with `Retry-After: retryAfterSeconds`.
        public var http429Probability: Double = 0
        public var retryAfterSeconds: Int = 1
        /// 200 with errorCode ERROR_SERVICE_UNAVALIABLE.
        public var serviceUnavailableProbability: Double = 0
        /// 200 with a non-JSON body.
        public var malformedProbability: Double = 0
        /// 200 with the first half of the real JSON body.
        public var truncatedProbability: Double = 0
        /// Delay the answer by `slowDelayReal` real seconds.
        public var slowProbability: Double = 0
        public var slowDelayReal: Double = 2

        public init() {}

        public var isQuiet: Bool {
            dropProbability == 0 && http500Probability == 0 && http503Probability == 0 && http429Probability == 0
                && serviceUnavailableProbability == 0 && malformedProbability == 0 && truncatedProbability == 0
                && slowProbability == 0
        }
    }
}
