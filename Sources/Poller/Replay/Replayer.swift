import Kafka
import Logging
import NIOConcurrencyHelpers
import PollerCore

/// `ezpoll replay`'s I/O around `ReplayPlan`: reads the topic being replayed up to the
/// end it has when the replay starts, reads the whole input for copies made before, writes
/// the copies and waits for the brokers' acknowledgements. A copy counts as replayed
/// only once acknowledged; a dry run writes nothing (it creates no producer).
public struct Replayer: Sendable {
    public struct Configuration: Sendable {
        public var brokers: String
        public var source: ReplaySource
        public var sourceTopic: String
        public var inputTopic: String
        public var filter = ReplayFilter()
        public var force = false
        public var dryRun = false
        /// A failure's task can be polled again until its creation plus this.
        public var resultWindow: Duration
        /// librdkafka properties of the reader and of the producer (security settings and the like).
        public var consumerProperties: [String: String] = [:]
        public var producerProperties: [String: String] = [:]
        /// A read that gets nothing for this long while records are due fails.
        public var stallTimeout = Duration.seconds(30)

        public init(brokers: String, source: ReplaySource, sourceTopic: String, inputTopic: String, resultWindow: Duration) {
            self.brokers = brokers
            self.source = source
            self.sourceTopic = sourceTopic
            self.inputTopic = inputTopic
            self.resultWindow = resultWindow
        }
    }

    public let configuration: Configuration
    private let logger: Logger

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs the replay; `now` decides which failures' result windows are still open.
    public func run(now: Timestamp = WallClock.now()) async throws -> ReplayReport {
        let config = configuration
        let reader = try KafkaTopicReader(bootstrapServers: config.brokers, properties: config.consumerProperties, logger: logger)
        defer { reader.close() }
        let initial = ReplayPlan(source: config.source, sourceTopic: config.sourceTopic, inputTopic: config.inputTopic,
                                 filter: config.filter, force: config.force, resultWindow: config.resultWindow, now: now)
        var plan = try await Blocking.run { [initial] in
            var plan = initial
            let ranges = try reader.read(topic: config.sourceTopic, partitions: config.filter.partitions.isEmpty ? nil : config.filter.partitions,
                                         stallTimeout: config.stallTimeout) { batch in
                for record in batch { plan.consider(record) }
            }
            plan.noteRanges(ranges)
            guard plan.needsInput else { return plan }
            _ = try reader.read(topic: config.inputTopic, stallTimeout: config.stallTimeout) { batch in
                for record in batch { plan.noteInput(record) }
            }
            return plan
        }
        let copies = plan.copies()
        var report = plan.report
        (report.dryRun, report.force) = (config.dryRun, config.force)
        guard !config.dryRun, !copies.isEmpty else { return report }
        (report.copied, report.failed) = try await write(copies)
        return report
    }

    /// Writes `copies` and waits for every delivery result: how many were acknowledged and how many failed.
    private func write(_ copies: [KafkaOutgoingRecord]) async throws -> (acknowledged: Int, failed: Int) {
        var producerConfig = KafkaProducerConfiguration(bootstrapServers: configuration.brokers)
        producerConfig.clientID = "ezpoll-replay"
        producerConfig.properties = configuration.producerProperties
        let producer = try KafkaProducer(configuration: producerConfig, logger: logger)
        let results = NIOLockedValueBox((acknowledged: 0, failed: 0, firstError: String?.none))
        var refused = 0
        for copy in copies {
            do {
                try await producer.enqueue(copy) { result in
                    results.withLockedValue { counts in
                        switch result {
                        case .success: counts.acknowledged += 1
                        case .failure(let error):
                            counts.failed += 1
                            counts.firstError = counts.firstError ?? error.message
                        }
                    }
                }
            } catch {
                refused += 1
                logger.error("replay: a copy could not be queued: \(error)")
            }
        }
        do {
            let messageTimeoutMs = producerConfig.properties["message.timeout.ms"].flatMap { Int($0) } ?? producerConfig.messageTimeoutMs
            try await producer.flush(timeoutMs: Int32(clamping: messageTimeoutMs + 5_000))
        } catch {
            logger.error("replay: not every copy was acknowledged in time: \(error)")
        }
        // Fails whatever is still queued, so every copy has its delivery result.
        await producer.close()
        let (acknowledged, failed, firstError) = results.withLockedValue { ($0.acknowledged, $0.failed, $0.firstError) }
        if let firstError { logger.error("replay: \(failed) copies failed, the first: \(firstError)") }
        return (acknowledged, failed + refused)
    }
}
