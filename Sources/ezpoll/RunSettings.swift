import ArgumentParser
import Foundation
import Kafka
import Logging
import Poller
import TaskAPI

/// `ezpoll run`'s options resolved against the environment (flag, then `EZPOLL_*`, then default).
struct RunSettings {
    var settings: PipelineSettings
    var logLevel: Logger.Level
    /// `--log-format json`: one JSON object per line.
    var jsonLogs: Bool
    /// The metrics/health port; 0: off.
    var metricsPort: Int
    var metricsHost: String

    /// The settings with no option given. `resolve` starts from the same values, and
    /// `RunCommand`'s help shows its defaults from here, so each is written once.
    static let defaults = PipelineSettings(profile: .ezCaptcha, brokers: "localhost:9092")
    /// The defaults of what `PipelineSettings` does not hold, for `resolve` and the help alike.
    static let defaultLogLevel = Logger.Level.info
    static let defaultLogFormat = "text"
    static let defaultRateLimitScope = "group"
    static let defaultMetricsPort = 9464
    static let defaultMetricsHost = "0.0.0.0"
    static let defaultCallbackHost = "0.0.0.0"

    static func resolve(_ options: RunCommand, environment env: [String: String]) throws -> RunSettings {
        func string(_ flag: String?, _ name: String, _ fallback: String) -> String { flag ?? env[name] ?? fallback }
        func optionalString(_ flag: String?, _ name: String) -> String? { flag ?? env[name] }
        func number<T: LosslessStringConvertible>(_ flag: T?, _ name: String) throws -> T? {
            if let flag { return flag }
            guard let text = env[name] else { return nil }
            guard let value = T(text) else { throw ValidationError("\(name)='\(text)' is not a valid number") }
            return value
        }

        let providerName = string(options.provider, "EZPOLL_PROVIDER", defaults.profile.name)
        guard var profile = ProviderProfile.named(providerName) else {
            throw ValidationError("unknown provider '\(providerName)'; known: \(ProviderProfile.builtins.map(\.name).joined(separator: ", "))")
        }
        if let url = optionalString(options.apiUrl, "EZPOLL_API_URL") { profile = profile.with(baseURL: url) }

        let levelName = string(options.logLevel, "EZPOLL_LOG_LEVEL", defaultLogLevel.rawValue)
        guard let logLevel = Logger.Level(rawValue: levelName) else { throw ValidationError("unknown log level '\(levelName)'") }
        let logFormat = string(options.logFormat, "EZPOLL_LOG_FORMAT", defaultLogFormat)
        try require(["text", "json"].contains(logFormat), "--log-format must be text or json (got '\(logFormat)')")

        let key = try clientKey(file: optionalString(options.clientKeyFile, "EZPOLL_CLIENT_KEY_FILE"), environment: env)
        let eventKeysOnly = options.eventKeysOnly || ["1", "true", "yes"].contains(env["EZPOLL_EVENT_KEYS_ONLY"]?.lowercased() ?? "")
        let providersFileNamed = optionalString(options.providersFile, "EZPOLL_PROVIDERS_FILE") != nil
        guard key != nil || eventKeysOnly || providersFileNamed else {
            throw ValidationError("no clientKey: set EZPOLL_CLIENT_KEY or --client-key-file (or --event-keys-only when every event carries its own)")
        }

        let brokers = string(options.brokers, "EZPOLL_BROKERS", defaults.brokers)
        try validateBrokers(brokers)
        var settings = PipelineSettings(profile: profile, brokers: brokers)
        settings.groupID = string(options.groupId, "EZPOLL_GROUP_ID", settings.groupID)
        if let file = optionalString(options.providersFile, "EZPOLL_PROVIDERS_FILE") {
            settings.providers = try ProvidersFile.read(file, environment: env)
            settings.profile = settings.providers[0].profile
        }
        settings.clientKey = key
        // Raw values first: each nonsensical one is refused with the option's name.
        let scale = try number(options.timeScale, "EZPOLL_TIME_SCALE") ?? settings.timeScale
        try require(scale > 0 && scale.isFinite, "--time-scale must be > 0")
        settings.timeScale = scale
        let firstPoll = try number(options.firstPollDelay, "EZPOLL_FIRST_POLL_DELAY")
        let interval = try number(options.pollInterval, "EZPOLL_POLL_INTERVAL")
        let window = try number(options.resultWindow, "EZPOLL_RESULT_WINDOW")
        let margin = try number(options.safetyMargin, "EZPOLL_SAFETY_MARGIN") ?? profile.safetyMargin.inSeconds
        try require(firstPoll.map { $0 >= 0 && $0.isFinite } ?? true, "--first-poll-delay must be >= 0 seconds (got \(firstPoll ?? 0))")
        try require(interval.map { $0 > 0 && $0.isFinite } ?? true, "--poll-interval must be > 0 seconds (got \(interval ?? 0))")
        try require(window.map { $0 > 0 && $0.isFinite } ?? true, "--result-window must be > 0 seconds (got \(window ?? 0))")
        let windowSeconds = window ?? profile.resultWindow.inSeconds
        try require(margin >= 0 && margin < windowSeconds,
                    "--safety-margin must be >= 0 and below --result-window (\(margin) against \(windowSeconds) seconds)")
        (settings.firstPollDelay, settings.pollInterval) = (firstPoll.map { .seconds($0) }, interval.map { .seconds($0) })
        (settings.resultWindow, settings.safetyMargin) = (window.map { .seconds($0) }, .seconds(margin))
        settings.maxPolls = try number(options.maxPolls, "EZPOLL_MAX_POLLS")
        try require((settings.maxPolls ?? 1) >= 1, "--max-polls must be at least 1")
        settings.banPause = try number(options.banPause, "EZPOLL_BAN_PAUSE").map { .seconds($0) }

        settings.maxInFlight = try number(options.maxInFlight, "EZPOLL_MAX_IN_FLIGHT")
        settings.maxConcurrentCalls = try number(options.maxConcurrentCalls, "EZPOLL_MAX_CONCURRENT_CALLS") ?? settings.maxConcurrentCalls
        let transport = string(options.httpClient, "EZPOLL_HTTP_CLIENT", settings.httpTransport.rawValue)
        guard let httpTransport = TaskResultClient.Configuration.Transport(rawValue: transport) else {
            throw ValidationError("--http-client must be \(TaskResultClient.Configuration.Transport.allCases.map(\.rawValue).joined(separator: " or ")) (got '\(transport)')")
        }
        settings.httpTransport = httpTransport
        do {
            settings.proxies = try ProxyConfiguration.resolve(override: optionalString(options.proxy, "EZPOLL_PROXY"), environment: env)
        } catch {
            throw ValidationError("--proxy: \(error)")
        }
        let lifetimes = try tokenLifetimes(options.tokenLifetime.isEmpty
            ? (env["EZPOLL_TOKEN_LIFETIMES"] ?? "").split(separator: ";").map(String.init) : options.tokenLifetime)
        settings.profile.tokenLifetimes = lifetimes.overriding(settings.profile.tokenLifetimes)
        for index in settings.providers.indices {
            settings.providers[index].profile.tokenLifetimes = lifetimes.overriding(settings.providers[index].profile.tokenLifetimes)
        }
        settings.maxResponseBytes = try number(options.maxResponseBytes, "EZPOLL_MAX_RESPONSE_BYTES") ?? settings.maxResponseBytes
        try require(settings.maxResponseBytes >= 1024, "--max-response-bytes must be at least 1024 (got \(settings.maxResponseBytes))")
        settings.rateLimit = try number(options.rateLimit, "EZPOLL_RATE_LIMIT") ?? settings.rateLimit
        try require((settings.maxInFlight ?? 1) >= 1, "--max-in-flight must be at least 1 (got \(settings.maxInFlight ?? 0))")
        try require(settings.maxConcurrentCalls >= 1, "--max-concurrent-calls must be at least 1 (got \(settings.maxConcurrentCalls))")
        try require(settings.rateLimit > 0 && settings.rateLimit.isFinite, "--rate-limit must be > 0 calls per second (got \(settings.rateLimit))")
        let scope = string(options.rateLimitScope, "EZPOLL_RATE_LIMIT_SCOPE", defaultRateLimitScope)
        try require(["group", "process"].contains(scope), "--rate-limit-scope must be group or process (got '\(scope)')")
        settings.shareRateLimitWithGroup = scope == "group"
        settings.maxErrorRate = try number(options.maxErrorRate, "EZPOLL_MAX_ERROR_RATE") ?? settings.maxErrorRate
        settings.maxErrorsPerMinute = try number(options.maxErrorsPerMinute, "EZPOLL_MAX_ERRORS_PER_MINUTE") ?? settings.maxErrorsPerMinute
        try require(settings.maxErrorRate > 0 && settings.maxErrorRate <= 1, "--max-error-rate must be > 0 and <= 1 (got \(settings.maxErrorRate))")
        try require(settings.maxErrorsPerMinute >= 1, "--max-errors-per-minute must be at least 1 (got \(settings.maxErrorsPerMinute))")

        // Kafka properties: a file (secrets stay off the command line), then the env or
        // flags; `consumer.`/`producer.` lines of the file and the side-specific flags
        // reach one side only (librdkafka warns about the other side's keys).
        if let file = optionalString(options.kafkaConfigFile, "EZPOLL_KAFKA_CONFIG_FILE") {
            (settings.kafkaProperties, settings.consumerProperties, settings.producerProperties) = try kafkaConfigFile(file)
        }
        settings.kafkaProperties.merge(try kafkaProperties(options.kafkaConfig, "EZPOLL_KAFKA_CONFIG", env)) { $1 }
        settings.consumerProperties.merge(try kafkaProperties(options.kafkaConsumerConfig, "EZPOLL_KAFKA_CONSUMER_CONFIG", env)) { $1 }
        settings.producerProperties.merge(try kafkaProperties(options.kafkaProducerConfig, "EZPOLL_KAFKA_PRODUCER_CONFIG", env)) { $1 }

        settings.commitMetadataMaxBytes = try number(options.commitMetadataMaxBytes, "EZPOLL_COMMIT_METADATA_MAX_BYTES") ?? settings.commitMetadataMaxBytes
        try require(settings.commitMetadataMaxBytes >= 0, "--commit-metadata-max-bytes must be >= 0 (0 = commit the watermark only)")
        let drain = try number(options.drainTimeout, "EZPOLL_DRAIN_TIMEOUT")
        let commit = try number(options.commitInterval, "EZPOLL_COMMIT_INTERVAL")
        try require(drain.map { $0 >= 0 && $0.isFinite } ?? true, "--drain-timeout must be >= 0 seconds")
        try require(commit.map { $0 > 0 && $0 <= 60 } ?? true, "--commit-interval must be > 0 and <= 60 seconds")
        (settings.drainTimeout, settings.commitInterval) = (drain.map { .seconds($0) }, commit.map { .seconds($0) })
        let balance = try number(options.balanceInterval, "EZPOLL_BALANCE_INTERVAL")
        let shortest = BalanceWatch.shortestInterval.components.seconds
        try require(balance.map { $0 >= Double(shortest) && $0.isFinite } ?? true,
                    "--balance-interval must be at least \(shortest) seconds (got \(balance ?? 0))")
        settings.balanceInterval = balance.map { .seconds($0) }
        let stall = try number(options.stallThreshold, "EZPOLL_STALL_THRESHOLD")
        try require(stall.map { $0 > 0 && $0.isFinite } ?? true, "--stall-threshold must be > 0 seconds")
        settings.stallThreshold = stall.map { .seconds($0) }
        settings.topics.input = string(options.inputTopic, "EZPOLL_INPUT_TOPIC", settings.topics.input)
        settings.topics.solutions = string(options.solutionsTopic, "EZPOLL_SOLUTIONS_TOPIC", settings.topics.solutions)
        settings.topics.failures = string(options.failuresTopic, "EZPOLL_FAILURES_TOPIC", settings.topics.failures)
        settings.topics.deadLetters = string(options.deadLetterTopic, "EZPOLL_DEAD_LETTER_TOPIC", settings.topics.deadLetters)
        let callbackPort = try number(options.callbackPort, "EZPOLL_CALLBACK_PORT") ?? 0
        guard (0...65_535).contains(callbackPort) else { throw ValidationError("--callback-port must be 0...65535 (0 = off)") }
        settings.callbacks = CallbackReceiver.Configuration(
            host: string(options.callbackHost, "EZPOLL_CALLBACK_HOST", defaultCallbackHost), port: callbackPort,
            token: try callbackToken(file: optionalString(options.callbackTokenFile, "EZPOLL_CALLBACK_TOKEN_FILE"), environment: env))
        settings.callbackRelayTopic = optionalString(options.callbackRelayTopic, "EZPOLL_CALLBACK_RELAY_TOPIC").flatMap { $0.isEmpty ? nil : $0 }
        let callbackFirst = try number(options.callbackFirstPoll, "EZPOLL_CALLBACK_FIRST_POLL")
        let callbackInterval = try number(options.callbackPollInterval, "EZPOLL_CALLBACK_POLL_INTERVAL")
        try require(callbackFirst.map { $0 >= 0 && $0.isFinite } ?? true, "--callback-first-poll must be >= 0 seconds")
        try require(callbackInterval.map { $0 > 0 && $0.isFinite } ?? true, "--callback-poll-interval must be > 0 seconds")
        if let callbackFirst { settings.callbackSchedule.firstPoll = .seconds(callbackFirst) }
        if let callbackInterval { settings.callbackSchedule.interval = .seconds(callbackInterval) }
        let metricsPort = try number(options.metricsPort, "EZPOLL_METRICS_PORT") ?? defaultMetricsPort
        guard (0...65_535).contains(metricsPort) else { throw ValidationError("--metrics-port must be 0...65535 (0 = off)") }
        let metricsHost = string(options.metricsHost, "EZPOLL_METRICS_HOST", defaultMetricsHost)
        return RunSettings(settings: settings, logLevel: logLevel, jsonLogs: logFormat == "json",
                           metricsPort: metricsPort, metricsHost: metricsHost)
    }

    var pipeline: Pipeline.Configuration { settings.configuration }
    var profile: ProviderProfile { settings.profile }
    /// Said once at startup (logged by `run`): settings that cannot work together.
    var warnings: [String] { settings.warnings }

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

    /// librdkafka properties given as flags (`key=value`, repeatable) or, without flags,
    /// as the `;`-separated variable `name`.
    static func kafkaProperties(_ flags: [String], _ name: String, _ env: [String: String]) throws -> [String: String] {
        if !flags.isEmpty { return try KafkaProperty.parse(flags) }
        guard let text = env[name], !text.isEmpty else { return [:] }
        return try KafkaProperty.parse(text.split(separator: ";").map(String.init))
    }

    /// `--kafka-config-file`: one `key=value` per line, `#` comments; a `consumer.` or
    /// `producer.` prefix gives a line to that side only.
    static func kafkaConfigFile(_ file: String) throws -> (common: [String: String], consumer: [String: String], producer: [String: String]) {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw ValidationError("--kafka-config-file: cannot read '\(file)'")
        }
        var result: (common: [String: String], consumer: [String: String], producer: [String: String]) = ([:], [:], [:])
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let (key, value) = try? KafkaProperty.parse(line) else {
                throw ValidationError("--kafka-config-file: line \(number + 1) of '\(file)' is not key=value")
            }
            if key.hasPrefix("consumer.") { result.consumer[String(key.dropFirst("consumer.".count))] = value }
            else if key.hasPrefix("producer.") { result.producer[String(key.dropFirst("producer.".count))] = value }
            else { result.common[key] = value }
        }
        return result
    }

    /// Lifetime rules as `--token-lifetime` takes them, for the help.
    static func shown(_ lifetimes: TokenLifetimes) -> String {
        lifetimes.rules.map { "\($0.match)=\($0.lifetime.components.seconds)" }.joined(separator: ", ")
    }

    /// `TEXT=SECONDS` rules for `--token-lifetime` / `EZPOLL_TOKEN_LIFETIMES`.
    static func tokenLifetimes(_ rules: [String]) throws -> TokenLifetimes {
        TokenLifetimes(try rules.map { rule in
            let parts = rule.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, let seconds = Double(parts[1]), seconds > 0, seconds.isFinite else {
                throw ValidationError("--token-lifetime must be TEXT=SECONDS with SECONDS > 0 (got '\(rule)')")
            }
            return TokenLifetimes.Rule(parts[0], .seconds(seconds))
        })
    }

    /// The callback path's secret: the file if one is named, else EZPOLL_CALLBACK_TOKEN, else none.
    /// Letters, digits, `-`, `_`, `.` and `~` only, so it stands in a URL path as it is.
    static func callbackToken(file: String?, environment env: [String: String]) throws -> String? {
        var token: String?
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read the callback token file '\(file)'")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            token = env["EZPOLL_CALLBACK_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let token, !token.isEmpty else { return nil }
        try require(token.count >= 16 && token.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.~".contains($0)) },
                    "the callback token must be at least 16 characters of A-Z a-z 0-9 - _ . ~")
        return token
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
