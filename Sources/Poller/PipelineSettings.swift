import Kafka
import TaskAPI

/// A pipeline's knobs in the units its users give them (API seconds, calls per second),
/// turned into a `Pipeline.Configuration` in one place. `ezpoll run` fills it from flags
/// and the environment (and names the flag when a value is refused); `demo`, `bench`
/// and tests fill it in code. Unset values come from the provider profile, the one
/// owner of the polling defaults.
public struct PipelineSettings: Sendable {
    public var profile: ProviderProfile
    public var brokers: String
    public var groupID = "ezpoll"
    public var topics = Pipeline.Topics()
    /// The key for events that carry none; nil: such events fail as `missing_client_key`.
    public var clientKey: ClientKey?
    /// Simulated API seconds per real second: the policy's times are divided by it (tests,
    /// demo, bench against the simulator). 1 in production.
    public var timeScale = 1.0
    /// On the API's clock (a time scale divides them); nil: the profile's.
    public var firstPollDelay: Duration?
    public var pollInterval: Duration?
    public var resultWindow: Duration?
    /// How long before the window closes polling stops; covers request latency and clock
    /// skew, so a time scale shrinks it no further than one real second. Nil: the
    /// profile's.
    public var safetyMargin: Duration?
    public var maxPolls: Int?
    public var banPause: Duration?
    /// The account's call budget, calls per second.
    public var rateLimit = PollingEngine.Configuration().rateLimit
    /// True: the group's members share `rateLimit`, each by its share of the input
    /// partitions. False: each process uses all of it.
    public var shareRateLimitWithGroup = true
    public var maxConcurrentCalls = PollingEngine.Configuration().maxConcurrentCalls
    /// Which HTTP client carries the calls (`--http-client`).
    public var httpTransport = TaskResultClient.Configuration().transport
    /// Most tasks held; nil: what the call budget polls on schedule (`budgetedInFlight`).
    public var maxInFlight: Int?
    /// When true (as in `ezpoll run`), `maxInFlight` is capped at `budgetedInFlight`:
    /// beyond it the input pauses and the backlog waits in Kafka. The bench's memory mode
    /// turns it off to hold 200,000 tasks on purpose.
    public var capInFlightToBudget = true
    /// Lower the in-flight bound while polls start late, raise it back while they start on
    /// time (`PollingEngine.Configuration.adaptiveInFlight`). The bench's memory mode turns
    /// it off.
    public var adaptiveInFlight = true
    public var maxErrorRate = ErrorBudget().maxErrorRate
    public var maxErrorsPerMinute = ErrorBudget().maxErrors
    public var commitMetadataMaxBytes = OffsetCommitMetadata.defaultMaxBytes
    /// Real time (they bound Kafka and HTTP work, not the provider's clock); nil: the
    /// pipeline's defaults (`Pipeline.Configuration`).
    public var drainTimeout: Duration?
    public var commitInterval: Duration?
    /// How long a partition's committed offset may stand still while records wait above
    /// it before the member turns unready, on the API's clock. Nil: the longest result
    /// window in use plus `stallAllowance`: by then every task at the committed offset
    /// has ended, solved or expired, unless something is stuck.
    public var stallThreshold: Duration?
    /// How often each configured account's balance is asked (`BalanceWatch`), on the API's
    /// clock, at least `BalanceWatch.shortestInterval`; nil: never.
    public var balanceInterval: Duration?
    /// `balanceInterval` in real time.
    public var balanceCheckInterval: Duration? { balanceInterval.map { scaled($0, $0) } }
    /// The accounts the balance watch asks: each provider's default key (events' own keys
    /// are not watched).
    public var watchedAccounts: [(provider: ProviderProfile, key: ClientKey)] {
        guard !providers.isEmpty else { return clientKey.map { [(profile, $0)] } ?? [] }
        return providers.compactMap { provider in (provider.clientKey ?? clientKey).map { (provider.profile, $0) } }
    }

    /// Default: 60 s past the result window.
    public static let stallAllowance = Duration.seconds(60)
    /// A time scale shrinks the stall threshold no further than this much real time: the
    /// Kafka work a commit waits for (the commit interval, acknowledgements, a rebalance)
    /// does not run faster with the simulator.
    public static let shortestStallThreshold = Duration.seconds(30)
    /// The provider callback receiver (`--callback-port`); port 0: off, and no task
    /// expects a callback whatever its event says.
    public var callbacks = CallbackReceiver.Configuration(host: "0.0.0.0", port: 0)
    /// The safety schedule of tasks that expect a callback, on the API's clock.
    public var callbackSchedule = CallbackSchedule()
    /// Where a callback for a task another member holds goes (`CallbackRelay`); nil: none,
    /// enough for a single instance.
    public var callbackRelayTopic: String?
    /// librdkafka properties for both clients, and for one side only.
    public var kafkaProperties: [String: String] = [:]
    public var consumerProperties: [String: String] = [:]
    public var producerProperties: [String: String] = [:]

    /// The egress proxy per provider host (`--proxy`, `HTTPS_PROXY`, `NO_PROXY`).
    public var proxies = ProxyConfiguration.direct
    /// Largest answer body a call may buffer (`--max-response-bytes`).
    public var maxResponseBytes = TaskResultClient.Configuration().maxBodyBytes

    /// The provider clients' settings: one keep-alive connection per concurrent call, so
    /// no call waits for a connection while the engine allows it to run.
    public var clientConfiguration: TaskResultClient.Configuration {
        var configuration = TaskResultClient.Configuration()
        configuration.maxConnectionsPerHost = maxConcurrentCalls
        configuration.transport = httpTransport
        configuration.proxies = proxies
        configuration.maxBodyBytes = maxResponseBytes
        return configuration
    }

    /// Several providers at once (`--providers-file`): an event's `provider` picks one by
    /// name and its `taskType` may pick timings of their own. Empty: `profile` only. With
    /// providers, the first is the one for events that name none.
    public var providers: [ProviderSettings] = []

    /// One provider of `providers`: its profile (name, URL, defaults), key and timings.
    public struct ProviderSettings: Sendable {
        public var profile: ProviderProfile
        public var clientKey: ClientKey?
        /// On the API's clock; nil: the run's, then the profile's.
        public var firstPollDelay: Duration?
        public var pollInterval: Duration?
        /// Timings by `taskType` (exact name).
        public var taskTypes: [String: Timing] = [:]

        public struct Timing: Sendable, Hashable {
            public var firstPollDelay: Duration?
            public var pollInterval: Duration?
            public init(firstPollDelay: Duration? = nil, pollInterval: Duration? = nil) {
                self.firstPollDelay = firstPollDelay
                self.pollInterval = pollInterval
            }
        }

        public init(profile: ProviderProfile, clientKey: ClientKey? = nil) {
            self.profile = profile
            self.clientKey = clientKey
        }
    }

    public init(profile: ProviderProfile, brokers: String) {
        self.profile = profile
        self.brokers = brokers
    }

    /// The polling policy on the simulated clock.
    public var policy: PollingPolicy { policy(profile, firstPollDelay: firstPollDelay, pollInterval: pollInterval) }

    /// A profile's policy with these timings (nil: the profile's), on the simulated clock.
    func policy(_ profile: ProviderProfile, firstPollDelay: Duration?, pollInterval: Duration?) -> PollingPolicy {
        PollingPolicy(
            initialDelay: scaled(firstPollDelay, profile.initialDelay),
            interval: scaled(pollInterval, profile.defaultPollInterval),
            minInterval: scaled(nil, profile.minPollInterval),
            maxPolls: maxPolls ?? profile.maxPolls,
            window: scaled(resultWindow, profile.resultWindow),
            safetyMargin: max(scaled(safetyMargin, profile.safetyMargin), min(safetyMargin ?? profile.safetyMargin, .seconds(1))),
            backoffBase: scaled(nil, profile.backoffBase),
            backoffMax: scaled(nil, profile.backoffMax))
    }

    /// What the call budget serves on schedule: each held task costs one call per poll
    /// interval, so the rate limit keeps rate × interval tasks on time; twice that leaves
    /// room for tasks still waiting for their first poll. The interval is the shortest
    /// any provider or task type polls at: tasks on longer ones cost less, so the bound
    /// holds whatever the mix.
    public var budgetedInFlight: Int {
        max(1, Int((2 * rateLimit * shortestPollInterval.inSeconds).rounded(.down)))
    }

    /// The longest result window of the profiles in use, on the API's clock.
    var longestResultWindow: Duration {
        ([resultWindow ?? profile.resultWindow] + providers.map { resultWindow ?? $0.profile.resultWindow }).max() ?? profile.resultWindow
    }

    /// The shortest poll interval of every policy in use (on the simulated clock).
    public var shortestPollInterval: Duration {
        let routes = self.routes
        guard !routes.isEmpty else { return policy.interval }
        return routes.flatMap { [$0.policy] + $0.taskTypePolicies.values }.map(\.interval).min() ?? policy.interval
    }

    /// `providers` resolved: each one's policies and key, its unset timings from the
    /// run's, then the profile's.
    var routes: [ProviderRoute] {
        providers.map { provider in
            let base = (provider.firstPollDelay ?? firstPollDelay, provider.pollInterval ?? pollInterval)
            return ProviderRoute(
                name: provider.profile.name,
                policy: policy(provider.profile, firstPollDelay: base.0, pollInterval: base.1),
                taskTypePolicies: provider.taskTypes.mapValues {
                    policy(provider.profile, firstPollDelay: $0.firstPollDelay ?? base.0, pollInterval: $0.pollInterval ?? base.1)
                },
                defaultClientKey: provider.clientKey ?? clientKey,
                tokenLifetimes: scaled(provider.profile.tokenLifetimes))
        }
    }

    /// Settings that cannot work together, said once at startup.
    public var warnings: [String] {
        guard capInFlightToBudget, let maxInFlight, maxInFlight > budgetedInFlight else { return [] }
        return ["max in flight \(maxInFlight) is more than the rate limit \(rateLimit)/s can poll every \(shortestPollInterval.inSeconds) s; holding at most \(budgetedInFlight) tasks (2 x rate x interval) so the rest waits in Kafka instead of expiring"]
    }

    public var configuration: Pipeline.Configuration {
        var engine = PollingEngine.Configuration()
        engine.policy = policy
        engine.defaultClientKey = clientKey
        engine.defaultProvider = profile.name
        let inFlight = capInFlightToBudget ? min(maxInFlight ?? budgetedInFlight, budgetedInFlight) : (maxInFlight ?? budgetedInFlight)
        engine.maxInFlight = inFlight
        engine.adaptiveInFlight = adaptiveInFlight
        engine.maxConcurrentCalls = maxConcurrentCalls
        engine.rateLimit = rateLimit
        engine.banDuration = scaled(banPause, profile.ipBanPause)
        engine.tokenLifetimes = scaled(profile.tokenLifetimes)
        engine.providers = routes
        if let first = engine.providers.first {
            engine.defaultProvider = first.name
            engine.policy = first.policy
        }
        engine.errorBudget = ErrorBudget(window: scaled(nil, ErrorBudget().window), maxErrorRate: maxErrorRate, maxErrors: maxErrorsPerMinute)
        engine.maxCommitMetadataBytes = commitMetadataMaxBytes
        if callbacks.port != 0 { engine.callbacks = scaledCallbackSchedule }

        var consumer = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: groupID)
        consumer.properties = kafkaProperties.merging(consumerProperties) { $1 }
        var producer = KafkaProducerConfiguration(bootstrapServers: brokers)
        producer.properties = kafkaProperties.merging(producerProperties) { $1 }
        var pipeline = Pipeline.Configuration(engine: engine, consumer: consumer, producer: producer)
        pipeline.topics = topics
        pipeline.shareRateLimitWithGroup = shareRateLimitWithGroup
        if let drainTimeout { pipeline.drainTimeout = drainTimeout }
        if let commitInterval { pipeline.commitInterval = commitInterval }
        pipeline.stallThreshold = max(scaled(stallThreshold, longestResultWindow + Self.stallAllowance), Self.shortestStallThreshold)
        return pipeline
    }

    /// `callbackSchedule` on the simulated clock (what the engine takes while callbacks are on).
    public var scaledCallbackSchedule: CallbackSchedule {
        CallbackSchedule(firstPoll: scaled(callbackSchedule.firstPoll, callbackSchedule.firstPoll),
                         interval: scaled(callbackSchedule.interval, callbackSchedule.interval),
                         maxHintsPerTask: callbackSchedule.maxHintsPerTask, maxEarlyCallbacks: callbackSchedule.maxEarlyCallbacks)
    }

    /// Token lifetimes from the API's clock to the simulated one.
    private func scaled(_ lifetimes: TokenLifetimes) -> TokenLifetimes {
        TokenLifetimes(lifetimes.rules.map { .init($0.match, scaled($0.lifetime, $0.lifetime)) })
    }

    /// `value` (or `fallback`), from the API's clock to the simulated one.
    private func scaled(_ value: Duration?, _ fallback: Duration) -> Duration {
        .milliseconds(Int64((Double((value ?? fallback).milliseconds) / timeScale).rounded()))
    }
}
