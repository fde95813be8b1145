import ArgumentParser
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import Poller
import TaskAPI

/// `ezpoll run`: the service. Every option also reads an `EZPOLL_*` environment
/// variable (the flag wins). The clientKey comes only from `EZPOLL_CLIENT_KEY` or a
/// file, never from a flag: command lines are visible to every user of the machine.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Consume task events, poll getTaskResult, publish solutions, failures and dead letters.",
        discussion: """
            The clientKey is read from the environment variable EZPOLL_CLIENT_KEY or from the \
            file named by --client-key-file / EZPOLL_CLIENT_KEY_FILE. Events may carry their \
            own clientKey. Every option below can also be set through the environment \
            variable named in its help.
            """
    )

    /// Where the help's defaults come from: the values `RunSettings.resolve` falls back to.
    private static let defaults = RunSettings.defaults

    /// A default as a user would type it: `200`, not `200.0`.
    private static func shown(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    @Option(help: "Kafka bootstrap servers. [EZPOLL_BROKERS, default \(Self.defaults.brokers)]")
    var brokers: String?
    @Option(help: "Kafka consumer group. [EZPOLL_GROUP_ID, default \(Self.defaults.groupID)]")
    var groupId: String?
    @Option(help: "Input topic of task events. [EZPOLL_INPUT_TOPIC, default \(Self.defaults.topics.input)]")
    var inputTopic: String?
    @Option(help: "Topic for solutions. [EZPOLL_SOLUTIONS_TOPIC, default \(Self.defaults.topics.solutions)]")
    var solutionsTopic: String?
    @Option(help: "Topic for failures. [EZPOLL_FAILURES_TOPIC, default \(Self.defaults.topics.failures)]")
    var failuresTopic: String?
    @Option(help: "Topic for dead letters. [EZPOLL_DEAD_LETTER_TOPIC, default \(Self.defaults.topics.deadLetters)]")
    var deadLetterTopic: String?
    @Option(help: "Provider profile: ez-captcha, capsolver, anti-captcha, capmonster, 2captcha. [EZPOLL_PROVIDER, default \(Self.defaults.profile.name)]")
    var provider: String?
    @Option(help: "Provider API base URL; defaults to the profile's. [EZPOLL_API_URL]")
    var apiUrl: String?
    @Option(help: "File holding the default clientKey. [EZPOLL_CLIENT_KEY_FILE]")
    var clientKeyFile: String?
    @Flag(help: "Start without a default clientKey: every event carries its own (events without one fail as missing_client_key). [EZPOLL_EVENT_KEYS_ONLY=1]")
    var eventKeysOnly = false
    @Option(parsing: .unconditional, help: "Most getTaskResult calls at once. [EZPOLL_MAX_CONCURRENT_CALLS, default \(Self.defaults.maxConcurrentCalls)]")
    var maxConcurrentCalls: Int?
    @Option(help: "HTTP client for getTaskResult: nio (our keep-alive HTTP/1.1 pool on SwiftNIO, one connection per concurrent call) or async-http-client. [EZPOLL_HTTP_CLIENT, default \(Self.defaults.httpTransport.rawValue)]")
    var httpClient: String?
    @Option(help: "Egress proxy for the provider calls, http://[user:password@]host:port (HTTP CONNECT tunnel), or none; without it HTTPS_PROXY / HTTP_PROXY by the provider's scheme. NO_PROXY hosts are reached directly. [EZPOLL_PROXY]")
    var proxy: String?
    @Option(name: .customLong("token-lifetime"), parsing: .singleValue,
            help: "Seconds a solved token of the task types containing TEXT (any case) stays usable, as TEXT=SECONDS (repeatable; the first match wins, before the defaults \(RunSettings.shown(TokenLifetimes.standard))): sets expiresAt in solutions. [EZPOLL_TOKEN_LIFETIMES, ';'-separated]")
    var tokenLifetime: [String] = []
    @Option(parsing: .unconditional, help: "Ask each configured account's balance (getBalance) every this many seconds, at least \(BalanceWatch.shortestInterval.components.seconds): ezpoll_account_balance, and the input is held while a balance is zero. Off unless set. [EZPOLL_BALANCE_INTERVAL]")
    var balanceInterval: Double?
    @Option(parsing: .unconditional, help: "Seconds a partition's committed offset may stand still while records wait above it before this member turns unready (/health/ready 503; ezpoll_partition_commit_stall_seconds); by default the result window plus \(PipelineSettings.stallAllowance.components.seconds) s, when every task at the committed offset has ended unless something is stuck. [EZPOLL_STALL_THRESHOLD]")
    var stallThreshold: Double?
    @Option(parsing: .unconditional, help: "Largest getTaskResult answer body in bytes; a longer one fails the call (transient) and closes its connection. The head, 1xx answers, chunk framing and trailers are limited to 16 KiB besides. [EZPOLL_MAX_RESPONSE_BYTES, default \(Self.defaults.maxResponseBytes)]")
    var maxResponseBytes: Int?
    @Option(parsing: .unconditional, help: "Most getTaskResult calls per second for the key, all tasks together; shared by the group's members (see --rate-limit-scope). [EZPOLL_RATE_LIMIT, default \(Self.shown(Self.defaults.rateLimit))]")
    var rateLimit: Double?
    @Option(help: "group: the members of the consumer group share --rate-limit, each using its share of the input partitions (updated on every rebalance); process: each process uses all of it. [EZPOLL_RATE_LIMIT_SCOPE, default \(RunSettings.defaultRateLimitScope)]")
    var rateLimitScope: String?
    @Option(parsing: .unconditional, help: "Most tasks in flight; above it the input pauses. At most, and by default, 2 x rate limit x poll interval: what the call budget polls on schedule. [EZPOLL_MAX_IN_FLIGHT]")
    var maxInFlight: Int?
    @Option(parsing: .unconditional, help: "Seconds from task creation to the first poll. [EZPOLL_FIRST_POLL_DELAY, default: the profile's]")
    var firstPollDelay: Double?
    @Option(parsing: .unconditional, help: "Seconds between polls of one task. [EZPOLL_POLL_INTERVAL, default: the profile's]")
    var pollInterval: Double?
    @Option(parsing: .unconditional, help: "Most polls of one task. [EZPOLL_MAX_POLLS, default: the profile's]")
    var maxPolls: Int?
    @Option(parsing: .unconditional, help: "Seconds after creation during which a result can be fetched. [EZPOLL_RESULT_WINDOW, default: the profile's]")
    var resultWindow: Double?
    @Option(parsing: .unconditional, help: "Stop polling this many seconds before the window closes. [EZPOLL_SAFETY_MARGIN, default: the profile's]")
    var safetyMargin: Double?
    @Option(parsing: .unconditional, help: "Error budget: the share of calls over a minute that may fail by our doing (transport, 5xx/429, malformed answers, unknown task ids, overload codes; not unsolvable captchas) before every call slows down. [EZPOLL_MAX_ERROR_RATE, default \(Self.shown(Self.defaults.maxErrorRate))]")
    var maxErrorRate: Double?
    @Option(parsing: .unconditional, help: "Error budget: most such errors in a minute before every call slows down. [EZPOLL_MAX_ERRORS_PER_MINUTE, default \(Self.defaults.maxErrorsPerMinute)]")
    var maxErrorsPerMinute: Int?
    @Option(parsing: .unconditional, help: "Seconds to stop all calls after ERROR_IP_BANNED. [EZPOLL_BAN_PAUSE, default: the profile's]")
    var banPause: Double?
    @Option(parsing: .unconditional, help: "Seconds a graceful stop or a partition revoke waits for calls in progress and the acknowledgement of their results. [EZPOLL_DRAIN_TIMEOUT, default \(Self.shown(Self.defaults.configuration.drainTimeout.inSeconds))]")
    var drainTimeout: Double?
    @Option(parsing: .unconditional, help: "Seconds from an acknowledged result to the commit of its offset (the most a crash repeats). [EZPOLL_COMMIT_INTERVAL, default \(Self.shown(Self.defaults.configuration.commitInterval.inSeconds))]")
    var commitInterval: Double?
    @Option(parsing: .unconditional, help: "Longest commit metadata in bytes (the brokers' offset.metadata.max.bytes). [EZPOLL_COMMIT_METADATA_MAX_BYTES, default \(Self.defaults.commitMetadataMaxBytes)]")
    var commitMetadataMaxBytes: Int?
    @Option(parsing: .unconditional, help: "Divide every policy duration by this (only for simulators running faster than real time). [EZPOLL_TIME_SCALE, default \(Self.shown(Self.defaults.timeScale))]")
    var timeScale: Double?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. [EZPOLL_LOG_LEVEL, default \(RunSettings.defaultLogLevel.rawValue)]")
    var logLevel: String?
    @Option(help: "Log format: text, or json (one object per line, millisecond timestamps, level, message, metadata). [EZPOLL_LOG_FORMAT, default \(RunSettings.defaultLogFormat)]")
    var logFormat: String?
    @Option(help: "Port of GET /metrics (Prometheus), /health/live and /health/ready; 0 turns it off. [EZPOLL_METRICS_PORT, default \(RunSettings.defaultMetricsPort)]")
    var metricsPort: Int?
    @Option(help: "Address the metrics/health port binds to. [EZPOLL_METRICS_HOST, default \(RunSettings.defaultMetricsHost)]")
    var metricsHost: String?
    @Option(help: "Port of the provider callback receiver (POST /callbacks/<provider>[/<token>]): a callback makes its task's next poll due at once, and tasks whose event has \"callback\": true are polled on the slower safety schedule; 0 turns it off. [EZPOLL_CALLBACK_PORT, default 0]")
    var callbackPort: Int?
    @Option(help: "Address the callback port binds to. [EZPOLL_CALLBACK_HOST, default \(RunSettings.defaultCallbackHost)]")
    var callbackHost: String?
    @Option(help: "File holding the callback token, the last path segment every callback must carry (403 otherwise); without it EZPOLL_CALLBACK_TOKEN, or none. [EZPOLL_CALLBACK_TOKEN_FILE]")
    var callbackTokenFile: String?
    @Option(help: "Kafka topic through which the members of a group hand each other callbacks for tasks they do not hold (a fleet behind one address needs it; create it like the others). Off unless set. [EZPOLL_CALLBACK_RELAY_TOPIC]")
    var callbackRelayTopic: String?
    @Option(parsing: .unconditional, help: "Seconds from creation to the first safety poll of a task that expects a callback. [EZPOLL_CALLBACK_FIRST_POLL, default \(Self.defaults.callbackSchedule.firstPoll.components.seconds)]")
    var callbackFirstPoll: Double?
    @Option(parsing: .unconditional, help: "Seconds between safety polls of a task that expects a callback. [EZPOLL_CALLBACK_POLL_INTERVAL, default \(Self.defaults.callbackSchedule.interval.components.seconds)]")
    var callbackPollInterval: Double?
    @Option(name: .customLong("kafka-config"), parsing: .singleValue,
            help: "A librdkafka property key=value, for consumer and producer (repeatable). [EZPOLL_KAFKA_CONFIG, ';'-separated]")
    var kafkaConfig: [String] = []
    @Option(name: .customLong("kafka-consumer-config"), parsing: .singleValue,
            help: "A librdkafka property key=value for the consumer only (repeatable). [EZPOLL_KAFKA_CONSUMER_CONFIG, ';'-separated]")
    var kafkaConsumerConfig: [String] = []
    @Option(name: .customLong("kafka-producer-config"), parsing: .singleValue,
            help: "A librdkafka property key=value for the producer only (repeatable). [EZPOLL_KAFKA_PRODUCER_CONFIG, ';'-separated]")
    var kafkaProducerConfig: [String] = []
    @Option(help: "A JSON file of several providers polled at once (an event's `provider` picks one; its `taskType` may pick timings): {\"providers\":[{\"name\":\"ez-captcha\",\"profile\":\"ez-captcha\",\"apiUrl\":...,\"clientKeyEnv\":\"EZ_KEY\" or \"clientKeyFile\":...,\"firstPollDelay\":5,\"pollInterval\":3,\"taskTypes\":{\"ImageToTextTask\":{\"firstPollDelay\":1,\"pollInterval\":1}}}]}. The first is for events that name none. Replaces --provider and --api-url. [EZPOLL_PROVIDERS_FILE]")
    var providersFile: String?
    @Option(help: "A file of librdkafka properties, one key=value per line ('#' comments; a 'consumer.' or 'producer.' prefix limits a line to that side): keeps secrets such as sasl.password off the command line. [EZPOLL_KAFKA_CONFIG_FILE]")
    var kafkaConfigFile: String?

    func run() async throws {
        let settings = try RunSettings.resolve(self, environment: ProcessInfo.processInfo.environment)
        // Traces: see `TaskSpanExport` (standard OTEL_* variables).
        var logger = settings.jsonLogs ? Logger(label: "ezpoll", factory: { JSONLogHandler(label: $0) }) : Logger(label: "ezpoll")
        logger.logLevel = settings.logLevel
        for warning in settings.warnings { logger.warning("\(warning)") }
        let environment = ProcessInfo.processInfo.environment
        let spanExport = TaskSpanExport.wanted(environment: environment) ? try TaskSpanExport.bootstrap(environment: environment) : nil
        var pipelineConfiguration = settings.pipeline
        pipelineConfiguration.traceTasks = spanExport != nil
        let client = try TaskResultClient(profile: settings.profile, configuration: settings.settings.clientConfiguration, logger: logger)
        var clients: [TaskResultClient] = [client]
        let pipeline: Pipeline
        do {
            // One HTTP client per further provider (`--providers-file`), by its route name.
            var byName: [String: any TaskResultFetching] = [:]
            for provider in settings.settings.providers.dropFirst() {
                let other = try TaskResultClient(profile: provider.profile, configuration: settings.settings.clientConfiguration, logger: logger)
                clients.append(other)
                byName[provider.profile.name] = other
            }
            pipeline = try Pipeline(configuration: pipelineConfiguration, client: client, providerClients: byName, logger: logger)
        } catch {
            for client in clients { await client.shutdown() }
            throw error
        }
        // Started in this order and stopped in reverse on SIGTERM/SIGINT: the pipeline
        // drains first, then the metrics server stops, then the HTTP clients close.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = clients.map { .init(service: StopOnShutdown { [client = $0] in await client.shutdown() }) }
        if let spanExport { services.insert(.init(service: spanExport), at: 0) } // stops last: the pipeline's last spans go out
        if settings.metricsPort != 0 {
            do {
                let server = try await ObservabilityServer.start(
                    source: pipeline, host: settings.metricsHost, port: settings.metricsPort, logger: logger)
                services.append(.init(service: StopOnShutdown { await server.stop() }))
            } catch {
                for client in clients { await client.shutdown() }
                throw ValidationError("cannot serve metrics on \(settings.metricsHost):\(settings.metricsPort): \(error)")
            }
        }
        if settings.settings.callbacks.port != 0 {
            do {
                let relay = try settings.settings.callbackRelayTopic.map { topic in
                    try CallbackRelay(topic: topic, pipeline: pipeline, bootstrapServers: settings.settings.brokers,
                                      properties: settings.settings.kafkaProperties.merging(settings.settings.consumerProperties) { $1 },
                                      logger: logger)
                }
                let receiver = try await CallbackReceiver.start(settings.settings.callbacks, pipeline: pipeline, relay: relay, logger: logger)
                services.append(.init(service: StopOnShutdown { await receiver.stop() }))
                if let relay { services.append(.init(service: relay)) }
            } catch {
                for client in clients { await client.shutdown() }
                throw ValidationError("cannot take callbacks on \(settings.settings.callbacks.host):\(settings.settings.callbacks.port): \(error)")
            }
        }
        if let interval = settings.settings.balanceCheckInterval {
            var byProvider: [String: TaskResultClient] = [:]
            for client in clients { byProvider[client.profile.name] = client }
            let accounts = settings.settings.watchedAccounts.compactMap { account in
                byProvider[account.provider.name].map { BalanceWatch.Account(provider: account.provider.name, key: account.key, client: $0) }
            }
            services.append(.init(service: BalanceWatch(accounts: accounts, interval: interval, pipeline: pipeline, logger: logger)))
        }
        services.append(.init(service: pipeline, successTerminationBehavior: .gracefullyShutdownGroup,
                              failureTerminationBehavior: .gracefullyShutdownGroup))
        try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                    logger: logger)).run()
    }
}
