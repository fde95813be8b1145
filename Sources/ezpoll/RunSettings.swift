import ArgumentParser
import Foundation
import Kafka
import Logging
import Poller
import TaskAPI

/// `ezpoll run`'s options resolved against the environment (flag, then `EZPOLL_*`, then default).
struct RunSettings {
    var pipeline: Pipeline.Configuration
    var profile: ProviderProfile
    var logLevel: Logger.Level
    /// The metrics/health port; 0: off.
    var metricsPort: Int
    var metricsHost: String

    static func resolve(_ options: RunCommand, environment env: [String: String]) throws -> RunSettings {
        func string(_ flag: String?, _ name: String, _ fallback: String) -> String { flag ?? env[name] ?? fallback }
        func optionalString(_ flag: String?, _ name: String) -> String? { flag ?? env[name] }
        func number<T: LosslessStringConvertible>(_ flag: T?, _ name: String) throws -> T? {
            if let flag { return flag }
            guard let text = env[name] else { return nil }
            guard let value = T(text) else { throw ValidationError("\(name)='\(text)' is not a valid number") }
            return value
        }

        let providerName = string(options.provider, "EZPOLL_PROVIDER", "ez-captcha")
        guard var profile = ProviderProfile.named(providerName) else {
            throw ValidationError("unknown provider '\(providerName)'; known: \(ProviderProfile.builtins.map(\.name).joined(separator: ", "))")
        }
        if let url = optionalString(options.apiUrl, "EZPOLL_API_URL") { profile = profile.with(baseURL: url) }

        let levelName = string(options.logLevel, "EZPOLL_LOG_LEVEL", "info")
        guard let logLevel = Logger.Level(rawValue: levelName) else { throw ValidationError("unknown log level '\(levelName)'") }

        let key = try clientKey(file: optionalString(options.clientKeyFile, "EZPOLL_CLIENT_KEY_FILE"), environment: env)
        let eventKeysOnly = options.eventKeysOnly || ["1", "true", "yes"].contains(env["EZPOLL_EVENT_KEYS_ONLY"]?.lowercased() ?? "")
        guard key != nil || eventKeysOnly else {
            throw ValidationError("no clientKey: set EZPOLL_CLIENT_KEY or --client-key-file (or --event-keys-only when every event carries its own)")
        }

        let scale = try number(options.timeScale, "EZPOLL_TIME_SCALE") ?? 1
        guard scale > 0 else { throw ValidationError("--time-scale must be > 0") }
        func seconds(_ value: Double?, _ fallback: Duration) -> Duration {
            let base = value.map { Duration.milliseconds(Int64($0 * 1_000)) } ?? fallback
            return .milliseconds(Int64((Double(base.milliseconds) / scale).rounded()))
        }
        // The margin covers request latency, which is real time: a time scale shrinks it
        // no further than one second.
        // Raw values first: each nonsensical one is refused with the option's name.
        let firstPoll = try number(options.firstPollDelay, "EZPOLL_FIRST_POLL_DELAY")
        let interval = try number(options.pollInterval, "EZPOLL_POLL_INTERVAL")
        let window = try number(options.resultWindow, "EZPOLL_RESULT_WINDOW")
        let margin = try number(options.safetyMargin, "EZPOLL_SAFETY_MARGIN") ?? 5
        try require(firstPoll.map { $0 >= 0 && $0.isFinite } ?? true, "--first-poll-delay must be >= 0 seconds (got \(firstPoll ?? 0))")
        try require(interval.map { $0 > 0 && $0.isFinite } ?? true, "--poll-interval must be > 0 seconds (got \(interval ?? 0))")
        try require(window.map { $0 > 0 && $0.isFinite } ?? true, "--result-window must be > 0 seconds (got \(window ?? 0))")
        let windowSeconds = window ?? Double(profile.resultWindow.milliseconds) / 1_000
        try require(margin >= 0 && margin < windowSeconds,
                    "--safety-margin must be >= 0 and below --result-window (\(margin) against \(windowSeconds) seconds)")
        let safetyMargin = max(seconds(margin, .seconds(5)), .milliseconds(Int64(min(margin, 1) * 1_000)))
        let policy = PollingPolicy(
            initialDelay: seconds(firstPoll, profile.initialDelay),
            interval: seconds(interval, profile.defaultPollInterval),
            minInterval: seconds(nil, profile.minPollInterval),
            maxPolls: try number(options.maxPolls, "EZPOLL_MAX_POLLS") ?? profile.maxPolls,
            window: seconds(window, profile.resultWindow),
            safetyMargin: safetyMargin,
            backoffBase: seconds(nil, .seconds(3)),
            backoffMax: seconds(nil, .seconds(30)))
        guard policy.maxPolls >= 1 else { throw ValidationError("--max-polls must be at least 1") }

        let maxInFlight = try number(options.maxInFlight, "EZPOLL_MAX_IN_FLIGHT") ?? 50_000
        let concurrency = try number(options.maxConcurrentCalls, "EZPOLL_MAX_CONCURRENT_CALLS") ?? 64
        let rate = try number(options.rateLimit, "EZPOLL_RATE_LIMIT") ?? 200
        try require(maxInFlight >= 1, "--max-in-flight must be at least 1 (got \(maxInFlight))")
        try require(concurrency >= 1, "--max-concurrent-calls must be at least 1 (got \(concurrency))")
        try require(rate > 0 && rate.isFinite, "--rate-limit must be > 0 calls per second (got \(rate))")
        var engine = PollingEngine.Configuration()
        engine.policy = policy
        engine.defaultClientKey = key
        engine.defaultProvider = profile.name
        engine.maxInFlight = maxInFlight
        engine.resumeBelow = maxInFlight * 9 / 10
        engine.maxConcurrentCalls = concurrency
        engine.requestsPerSecond = rate
        engine.banDuration = seconds(try number(options.banPause, "EZPOLL_BAN_PAUSE"), profile.ipBanPause)
        let maxErrorRate = try number(options.maxErrorRate, "EZPOLL_MAX_ERROR_RATE") ?? 0.2
        let maxErrors = try number(options.maxErrorsPerMinute, "EZPOLL_MAX_ERRORS_PER_MINUTE") ?? 60
        try require(maxErrorRate > 0 && maxErrorRate <= 1, "--max-error-rate must be > 0 and <= 1 (got \(maxErrorRate))")
        try require(maxErrors >= 1, "--max-errors-per-minute must be at least 1 (got \(maxErrors))")
        engine.errorBudget = ErrorBudget(window: seconds(nil, .seconds(60)), maxErrorRate: maxErrorRate, maxErrors: maxErrors)

        var kafkaProperties = try KafkaProperty.parse(options.kafkaConfig)
        if options.kafkaConfig.isEmpty, let fromEnv = env["EZPOLL_KAFKA_CONFIG"], !fromEnv.isEmpty {
            kafkaProperties = try KafkaProperty.parse(fromEnv.split(separator: ";").map(String.init))
        }
        let brokers = string(options.brokers, "EZPOLL_BROKERS", "localhost:9092")
        try validateBrokers(brokers)
        var consumer = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: string(options.groupId, "EZPOLL_GROUP_ID", "ezpoll"))
        consumer.properties = kafkaProperties
        var producer = KafkaProducerConfiguration(bootstrapServers: brokers)
        producer.properties = kafkaProperties

        let maxMetadata = try number(options.commitMetadataMaxBytes, "EZPOLL_COMMIT_METADATA_MAX_BYTES") ?? OffsetCommitMetadata.defaultMaxBytes
        guard maxMetadata >= 0 else { throw ValidationError("--commit-metadata-max-bytes must be >= 0 (0 = commit the watermark only)") }
        engine.maxCommitMetadataBytes = maxMetadata

        var pipeline = Pipeline.Configuration(engine: engine, consumer: consumer, producer: producer)
        // Real time, not scaled: these bound Kafka and HTTP work, not the provider's clock.
        let drain = try number(options.drainTimeout, "EZPOLL_DRAIN_TIMEOUT") ?? 10
        let commitEvery = try number(options.commitInterval, "EZPOLL_COMMIT_INTERVAL") ?? 0.25
        guard drain >= 0, drain.isFinite else { throw ValidationError("--drain-timeout must be >= 0 seconds") }
        guard commitEvery > 0, commitEvery <= 60 else { throw ValidationError("--commit-interval must be > 0 and <= 60 seconds") }
        pipeline.drainTimeout = .milliseconds(Int64(drain * 1_000))
        pipeline.commitInterval = .milliseconds(Int64(commitEvery * 1_000))
        pipeline.topics.input = string(options.inputTopic, "EZPOLL_INPUT_TOPIC", pipeline.topics.input)
        pipeline.topics.solutions = string(options.solutionsTopic, "EZPOLL_SOLUTIONS_TOPIC", pipeline.topics.solutions)
        pipeline.topics.failures = string(options.failuresTopic, "EZPOLL_FAILURES_TOPIC", pipeline.topics.failures)
        pipeline.topics.deadLetters = string(options.deadLetterTopic, "EZPOLL_DEAD_LETTER_TOPIC", pipeline.topics.deadLetters)
        let metricsPort = try number(options.metricsPort, "EZPOLL_METRICS_PORT") ?? 9464
        guard (0...65_535).contains(metricsPort) else { throw ValidationError("--metrics-port must be 0...65535 (0 = off)") }
        let metricsHost = string(options.metricsHost, "EZPOLL_METRICS_HOST", "0.0.0.0")
        return RunSettings(pipeline: pipeline, profile: profile, logLevel: logLevel,
                           metricsPort: metricsPort, metricsHost: metricsHost)
    }

    static func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw ValidationError(message()) }
    }

    /// `host:port[,host:port...]`, each port 1...65535 (librdkafka would take a bad port as 0).
    static func validateBrokers(_ list: String) throws {
        let entries = list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        for entry in entries {
            let hostPort = entry.split(separator: "://").last.map(String.init) ?? entry
            guard let colon = hostPort.lastIndex(of: ":"), colon != hostPort.startIndex,
                  let port = Int(hostPort[hostPort.index(after: colon)...]), (1...65_535).contains(port) else {
                throw ValidationError("--brokers: '\(entry)' is not host:port (list: '\(list)')")
            }
        }
    }

    /// The default clientKey: the file if one is named, else EZPOLL_CLIENT_KEY, else none
    /// (then every event must carry its own).
    static func clientKey(file: String?, environment env: [String: String]) throws -> ClientKey? {
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read the client key file '\(file)'")
            }
            let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !key.isEmpty else { throw ValidationError("the client key file '\(file)' is empty") }
            return ClientKey(key)
        }
        if let key = env["EZPOLL_CLIENT_KEY"]?.trimmingCharacters(in: .whitespacesAndNewlines), !key.isEmpty {
            return ClientKey(key)
        }
        return nil
    }
}
