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
    /// `--log-format json`: one JSON object per line.
    var jsonLogs: Bool
    /// Said once at startup (logged by `run`): settings that cannot work together.
    var warnings: [String] = []
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
        let logFormat = string(options.logFormat, "EZPOLL_LOG_FORMAT", "text")
        try require(["text", "json"].contains(logFormat), "--log-format must be text or json (got '\(logFormat)')")

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

        let requestedInFlight = try number(options.maxInFlight, "EZPOLL_MAX_IN_FLIGHT")
        let concurrency = try number(options.maxConcurrentCalls, "EZPOLL_MAX_CONCURRENT_CALLS") ?? 64
        let rate = try number(options.rateLimit, "EZPOLL_RATE_LIMIT") ?? 200
        try require((requestedInFlight ?? 1) >= 1, "--max-in-flight must be at least 1 (got \(requestedInFlight ?? 0))")
        // What the call budget serves on schedule: each held task costs one call per
        // poll interval, so the rate limit keeps rate x interval tasks on time; twice
        // that leaves room for tasks still waiting for their first poll. Beyond it the
        // input pauses and the backlog waits in Kafka (visible as consumer lag) instead
        // of every task's polls drifting late until tasks expire unpolled.
        let intervalSeconds = Double(policy.interval.milliseconds) / 1_000
        let onSchedule = max(1, Int((2 * rate * intervalSeconds).rounded(.down)))
        var warnings: [String] = []
        let maxInFlight: Int
        if let requestedInFlight, requestedInFlight > onSchedule {
            warnings.append("--max-in-flight \(requestedInFlight) is more than --rate-limit \(rate)/s can poll every \(intervalSeconds) s; holding at most \(onSchedule) tasks (2 x rate x interval) so the rest waits in Kafka instead of expiring")
            maxInFlight = onSchedule
        } else {
            maxInFlight = requestedInFlight ?? onSchedule
        }
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

        // Kafka properties: a file (secrets stay off the command line), then the env or
        // flags; `consumer.`/`producer.` lines of the file and the side-specific flags
        // reach one side only (librdkafka warns about the other side's keys).
        func properties(_ flags: [String], _ name: String) throws -> [String: String] {
            if !flags.isEmpty { return try KafkaProperty.parse(flags) }
            guard let text = env[name], !text.isEmpty else { return [:] }
            return try KafkaProperty.parse(text.split(separator: ";").map(String.init))
        }
        var shared: [String: String] = [:]
        var consumerOnly: [String: String] = [:]
        var producerOnly: [String: String] = [:]
        if let file = optionalString(options.kafkaConfigFile, "EZPOLL_KAFKA_CONFIG_FILE") {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("--kafka-config-file: cannot read '\(file)'")
            }
            for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                guard let (key, value) = try? KafkaProperty.parse(line) else {
                    throw ValidationError("--kafka-config-file: line \(number + 1) of '\(file)' is not key=value")
                }
                if key.hasPrefix("consumer.") { consumerOnly[String(key.dropFirst("consumer.".count))] = value }
                else if key.hasPrefix("producer.") { producerOnly[String(key.dropFirst("producer.".count))] = value }
                else { shared[key] = value }
            }
        }
        shared.merge(try properties(options.kafkaConfig, "EZPOLL_KAFKA_CONFIG")) { $1 }
        consumerOnly.merge(try properties(options.kafkaConsumerConfig, "EZPOLL_KAFKA_CONSUMER_CONFIG")) { $1 }
        producerOnly.merge(try properties(options.kafkaProducerConfig, "EZPOLL_KAFKA_PRODUCER_CONFIG")) { $1 }
        let brokers = string(options.brokers, "EZPOLL_BROKERS", "localhost:9092")
        try validateBrokers(brokers)
        var consumer = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: string(options.groupId, "EZPOLL_GROUP_ID", "ezpoll"))
        consumer.properties = shared.merging(consumerOnly) { $1 }
        var producer = KafkaProducerConfiguration(bootstrapServers: brokers)
        producer.properties = shared.merging(producerOnly) { $1 }

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
        return RunSettings(pipeline: pipeline, profile: profile, logLevel: logLevel, jsonLogs: logFormat == "json", warnings: warnings,
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
