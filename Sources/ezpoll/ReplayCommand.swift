import ArgumentParser
import Foundation
import Logging
import Poller

/// `ezpoll replay`: copies dead letters (or failures of a retryable reason) back to the
/// input topic, once each. Every option also reads the `EZPOLL_*` variable `ezpoll run`
/// reads for it (the flag wins), so both commands see the same topics and brokers.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Copy dead letters (or retryable failures) back to the input topic, once each.",
        discussion: """
            Reads the dead-letter topic (or, with --from failures, the failures topic) up to \
            its end when the replay starts, chooses records by --reason, --partition, --since \
            and --until, and writes each chosen record's task event to the input topic with \
            the record's headers and ezpoll-replay-topic, -partition, -offset and -reason added. \
            A record a copy in the input already names is not copied again unless --force. \
            A copy counts as replayed once the brokers acknowledged it. --dry-run prints the \
            counts and writes nothing.
            """
    )

    @Option(help: "Kafka bootstrap servers. [EZPOLL_BROKERS, default \(RunSettings.defaults.brokers)]")
    var brokers: String?
    @Option(help: "What to replay: dead-letters, or failures (only \(ReplaySource.failures.reasonCodes.joined(separator: ", ")), while the task's result window is open).")
    var from: String = ReplaySource.deadLetters.rawValue
    @Option(help: "Input topic the copies go to. [EZPOLL_INPUT_TOPIC, default \(RunSettings.defaults.topics.input)]")
    var inputTopic: String?
    @Option(help: "Dead-letter topic. [EZPOLL_DEAD_LETTER_TOPIC, default \(RunSettings.defaults.topics.deadLetters)]")
    var deadLetterTopic: String?
    @Option(help: "Failures topic. [EZPOLL_FAILURES_TOPIC, default \(RunSettings.defaults.topics.failures)]")
    var failuresTopic: String?
    @Option(parsing: .singleValue, help: "Replay only records of this reason code (repeatable, or comma-separated), e.g. unknown_provider or transient_errors.")
    var reason: [String] = []
    @Option(parsing: .singleValue, help: "Replay only records of this partition of the topic replayed from (repeatable, or comma-separated).")
    var partition: [String] = []
    @Option(help: "Replay only records written at or after this time (RFC 3339, e.g. 2026-12-04T10:00:00Z).")
    var since: String?
    @Option(help: "Replay only records written before this time (RFC 3339).")
    var until: String?
    @Option(help: "Seconds after creation during which a failed task can still be polled (--from failures). [EZPOLL_RESULT_WINDOW, default: the \(RunSettings.defaults.profile.name) profile's \(RunSettings.defaults.profile.resultWindow.components.seconds)]")
    var resultWindow: Double?
    @Flag(help: "Print the counts (scanned, matching by reason and partition, not replayable, already replayed, would copy) and write nothing.")
    var dryRun = false
    @Flag(help: "Copy records again that an earlier replay already copied.")
    var force = false
    @Option(name: .customLong("kafka-config"), parsing: .singleValue,
            help: "A librdkafka property key=value, for reader and producer (repeatable). [EZPOLL_KAFKA_CONFIG, ';'-separated]")
    var kafkaConfig: [String] = []
    @Option(help: "A file of librdkafka properties, one key=value per line ('#' comments; a 'consumer.' or 'producer.' prefix limits a line to the reader or the producer). [EZPOLL_KAFKA_CONFIG_FILE]")
    var kafkaConfigFile: String?

    func run() async throws {
        let configuration = try settings(environment: ProcessInfo.processInfo.environment)
        var logger = Logger(label: "ezpoll.replay")
        logger.logLevel = .warning
        let report = try await Replayer(configuration: configuration, logger: logger).run()
        print(report.lines.joined(separator: "\n"))
        if report.failed > 0 { throw ExitCode(1) }
    }

    /// The options resolved against the environment (flag, then `EZPOLL_*`, then default), each refusal naming its option.
    func settings(environment env: [String: String]) throws -> Replayer.Configuration {
        guard let source = ReplaySource(rawValue: from) else {
            throw ValidationError("--from must be \(ReplaySource.allCases.map(\.rawValue).joined(separator: " or ")) (got '\(from)')")
        }
        let brokers = brokers ?? env["EZPOLL_BROKERS"] ?? RunSettings.defaults.brokers
        try RunSettings.validateBrokers(brokers)
        let topics = RunSettings.defaults.topics
        let sourceTopic = source == .deadLetters
            ? deadLetterTopic ?? env["EZPOLL_DEAD_LETTER_TOPIC"] ?? topics.deadLetters
            : failuresTopic ?? env["EZPOLL_FAILURES_TOPIC"] ?? topics.failures
        let window = try resultWindow ?? env["EZPOLL_RESULT_WINDOW"].map { text in
            guard let seconds = Double(text) else { throw ValidationError("EZPOLL_RESULT_WINDOW='\(text)' is not a valid number") }
            return seconds
        } ?? RunSettings.defaults.profile.resultWindow.inSeconds
        try RunSettings.require(window > 0 && window.isFinite, "--result-window must be > 0 seconds (got \(window))")
        var configuration = Replayer.Configuration(brokers: brokers, source: source, sourceTopic: sourceTopic,
                                                   inputTopic: inputTopic ?? env["EZPOLL_INPUT_TOPIC"] ?? topics.input,
                                                   resultWindow: .seconds(window))
        configuration.filter = try filter(source: source)
        (configuration.dryRun, configuration.force) = (dryRun, force)
        var common: [String: String] = [:]
        if let file = kafkaConfigFile ?? env["EZPOLL_KAFKA_CONFIG_FILE"] {
            (common, configuration.consumerProperties, configuration.producerProperties) = try RunSettings.kafkaConfigFile(file)
        }
        common.merge(try RunSettings.kafkaProperties(kafkaConfig, "EZPOLL_KAFKA_CONFIG", env)) { $1 }
        configuration.consumerProperties.merge(common) { side, _ in side }
        configuration.producerProperties.merge(common) { side, _ in side }
        return configuration
    }

    private func filter(source: ReplaySource) throws -> ReplayFilter {
        func list(_ values: [String]) -> [String] {
            values.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        func time(_ text: String?, _ flag: String) throws -> Timestamp? {
            guard let text else { return nil }
            guard let time = Timestamp(rfc3339: text) else { throw ValidationError("\(flag) must be an RFC 3339 time such as 2026-12-04T10:00:00Z (got '\(text)')") }
            return time
        }
        let reasons = list(reason)
        for reason in reasons where !source.reasonCodes.contains(reason) {
            throw ValidationError("--reason \(reason) cannot be replayed from \(source.rawValue); known: \(source.reasonCodes.joined(separator: ", "))")
        }
        let partitions = try list(partition).map { text in
            guard let partition = Int32(text), partition >= 0 else { throw ValidationError("--partition must be a partition number (got '\(text)')") }
            return partition
        }
        let filter = ReplayFilter(reasons: Set(reasons), partitions: Set(partitions),
                                  since: try time(since, "--since"), until: try time(until, "--until"))
        if let since = filter.since, let until = filter.until {
            try RunSettings.require(since < until, "--since must be before --until")
        }
        return filter
    }
}
