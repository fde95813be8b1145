import Foundation
import Kafka
import Logging
import TaskAPI

/// `ezpoll run`: task events in, solutions / failures / dead letters out (DESIGN §3).
///
/// The driver around `PollingEngine`: an ingest loop (consumer batches → decode →
/// core), a dispatch loop (due polls → HTTP calls, bounded by the core's limits),
/// the publisher (producer with a delivery callback that moves the watermark) and
/// the rebalance handler (revoke: store final watermarks, drop the partitions' work).
/// Every core call runs under one lock; its actions run after the lock is released.
public final class Pipeline: @unchecked Sendable {
    public struct Topics: Sendable {
        public var input = "captcha.tasks"
        public var solutions = "captcha.solutions"
        public var failures = "captcha.failures"
        public var deadLetters = "captcha.tasks.dlq"
        public init() {}
    }

    public struct Configuration: Sendable {
        public var topics = Topics()
        public var engine: PollingEngine.Configuration
        public var consumer: KafkaConsumerConfiguration
        public var producer: KafkaProducerConfiguration
        /// Longest a graceful shutdown waits for running calls and unacknowledged results.
        public var shutdownTimeout: Duration = .seconds(20)

        public init(engine: PollingEngine.Configuration, consumer: KafkaConsumerConfiguration, producer: KafkaProducerConfiguration) {
            self.engine = engine
            self.consumer = consumer
            self.producer = producer
        }
    }

    public let configuration: Configuration
    private let client: TaskResultClient
    private let logger: Logger
    let consumer: KafkaConsumer
    private let producer: KafkaProducer
    private let lock = NSLock()
    private var engine: PollingEngine
    private let counters = PipelineCounters()
    private let wakeup = Wakeup()
    let stopRequested = OnceFlag()
    /// Prometheus metrics and the state behind `/health` (Observability/).
    public let metrics: PipelineMetrics

    public init(configuration: Configuration, client: TaskResultClient, logger: Logger,
                eventHandler: KafkaClientEventHandler? = nil, metrics: PipelineMetrics = PipelineMetrics()) throws {
        self.configuration = configuration
        self.client = client
        self.logger = logger
        self.metrics = metrics
        self.engine = PollingEngine(configuration: configuration.engine)
        let events: KafkaClientEventHandler = { event in
            metrics.kafkaEvent(event)
            eventHandler?(event)
        }
        self.consumer = try KafkaConsumer(configuration: configuration.consumer, logger: logger, eventHandler: events)
        self.producer = try KafkaProducer(configuration: configuration.producer, logger: logger, eventHandler: events)
    }

    func withEngine<R>(_ body: (inout PollingEngine) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&engine)
    }

    /// What the pipeline has done so far.
    public var snapshot: PipelineCounters.Snapshot { counters.snapshot }
    public var inFlight: Int { withEngine { $0.inFlightCount } }
    public var assignedPartitions: Set<TopicPartition> { consumer.assignedPartitions }

    /// Asks `run()` to stop gracefully: no new polls, running ones finish, results are
    /// flushed and their offsets stored, the consumer leaves the group.
    public func shutdown() {
        guard stopRequested.set() else { return }
        metrics.stopping()
        logger.info("shutdown requested")
        wakeup.signal()
    }

    /// Runs until `shutdown()`; then drains and returns.
    public func run() async throws {
        consumer.setRebalanceHandler { [unowned self] event in rebalanced(event) }
        try consumer.subscribe(topics: [configuration.topics.input])
        metrics.started()
        defer { metrics.stopping() }
        logger.info("pipeline started", metadata: [
            "input": "\(configuration.topics.input)", "group": "\(configuration.consumer.groupID)",
            "provider": "\(configuration.engine.defaultProvider)",
            "maxInFlight": "\(configuration.engine.maxInFlight)",
            "maxConcurrentCalls": "\(configuration.engine.maxConcurrentCalls)",
        ])
        async let ingest: Void = ingestLoop()
        await dispatchLoop()

        // Graceful drain: running calls are done and their results queued.
        let timeoutMs = Int32(clamping: configuration.shutdownTimeout.milliseconds)
        do {
            try await producer.flush(timeoutMs: timeoutMs)
        } catch {
            logger.error("results not acknowledged before shutdown; their records will be replayed: \(error)")
        }
        perform(withEngine { $0.finalOffsets() })
        await consumer.close()
        await ingest
        await producer.close(timeoutMs: 5_000)
        let totals = counters.snapshot
        logger.info("pipeline stopped", metadata: [
            "consumed": "\(totals.recordsConsumed)", "solved": "\(totals.solved)",
            "failed": "\(totals.failedTotal)", "deadLetters": "\(totals.deadLetterTotal)", "polls": "\(totals.polls)",
        ])
    }

    // MARK: Ingest

    private func ingestLoop() async {
        for await batch in consumer.batches {
            if stopRequested.isSet { continue } // left untracked: the next owner reads them
            counters.consumed(batch.count)
            metrics.consumed(batch)
            let now = WallClock.now()
            let actions = withEngine { engine in
                var actions: [PollingEngine.Action] = []
                for record in batch {
                    let source = MessageSource(topic: record.topic, partition: record.partition, offset: record.offset,
                                               timestamp: record.timestampMs.map { Timestamp(millisecondsSinceEpoch: $0) })
                    actions += engine.receive(InputRecord(source: source, key: record.key, value: record.value), now: now)
                }
                return actions
            }
            wakeup.signal()
            await performAsync(actions)
        }
    }

    // MARK: Dispatch

    private func dispatchLoop() async {
        await withDiscardingTaskGroup { group in
            while !stopRequested.isSet {
                let now = WallClock.now()
                let (actions, next) = withEngine { engine in (engine.tick(now: now), engine.nextWakeup(now: now)) }
                var rest: [PollingEngine.Action] = []
                for action in actions {
                    if case .call(let handle, let taskId, let key) = action {
                        counters.polled()
                        group.addTask { await self.poll(handle, taskId: taskId, key: key) }
                    } else {
                        rest.append(action)
                    }
                }
                await performAsync(rest)
                await wakeup.wait(until: next)
            }
        }
    }

    private func poll(_ handle: TaskHandle, taskId: String, key: ClientKey) async {
        let started = ContinuousClock.now
        let outcome = await client.getTaskResult(taskId: taskId, clientKey: key)
        metrics.polled(outcome, duration: ContinuousClock.now - started)
        let now = WallClock.now()
        let actions = withEngine { $0.callCompleted(handle, clientKey: key, outcome: PollOutcome(outcome), now: now) }
        wakeup.signal()
        await performAsync(actions)
    }

    // MARK: Actions

    /// Everything but publishing and calling; safe on any thread (also inside the
    /// rebalance callback and the delivery callback).
    private func perform(_ actions: [PollingEngine.Action]) {
        var stores: [TopicPartitionOffset] = []
        for action in actions {
            switch action {
            case .storeOffset(let partition, let offset):
                stores.append(TopicPartitionOffset(TopicPartition(partition.topic, partition.partition), offset: offset))
            case .pauseFetching:
                logger.info("in-flight limit reached: pausing input", metadata: ["inFlight": "\(configuration.engine.maxInFlight)"])
                consumer.pauseAll()
            case .resumeFetching:
                logger.info("in flight below the low-water mark: resuming input")
                consumer.resumeAll()
            case .banned(let until):
                logger.error("ERROR_IP_BANNED: every call paused", metadata: ["until": "\(until)"])
                metrics.ipBanned(until: until, now: WallClock.now())
            case .keyDisabled(let key, let code):
                logger.error("account error: no more calls with this key; its tasks fail",
                             metadata: ["key": "\(key.fingerprint)", "errorCode": "\(code)"])
                metrics.accountDisabled()
            case .slowdownChanged(let factor):
                logger.warning("API error rate changed the polling slowdown", metadata: ["factor": "\(factor)"])
            case .call, .publishSolution, .publishFailure, .publishDeadLetter:
                assertionFailure("perform cannot publish or call")
            }
        }
        store(stores)
    }

    private func performAsync(_ actions: [PollingEngine.Action]) async {
        var other: [PollingEngine.Action] = []
        for action in actions {
            switch action {
            case .publishSolution(let handle, let message):
                counters.solved()
                metrics.finished(failure: nil, createdAt: message.context.createdAt, now: WallClock.now())
                await publish(.task(handle), record(message.context.taskId, message.jsonBytes(), configuration.topics.solutions, .solution))
            case .publishFailure(let handle, let message):
                counters.failed(message.reason)
                metrics.finished(failure: message.reason, createdAt: message.context.createdAt, now: WallClock.now())
                await publish(.task(handle), record(message.context.taskId, message.jsonBytes(), configuration.topics.failures, .failure))
            case .publishDeadLetter(let token, let message):
                counters.deadLettered(message.reason.code)
                metrics.deadLettered(message.reason.code)
                await publish(.deadLetter(token), KafkaOutgoingRecord(
                    topic: configuration.topics.deadLetters, key: message.recordKey, value: message.jsonBytes(),
                    headers: [KafkaHeader(name: MessageSchema.headerKey, string: MessageSchema.deadLetter.headerValue)]))
            default:
                other.append(action)
            }
        }
        perform(other)
    }

    private func store(_ offsets: [TopicPartitionOffset]) {
        guard !offsets.isEmpty else { return }
        do {
            try consumer.storeOffsets(offsets)
            metrics.stored(offsets)
        } catch {
            // The partition went away meanwhile: its new owner starts from the last stored watermark.
            logger.debug("offset store skipped: \(error)")
        }
    }

    // MARK: Publishing

    /// What an acknowledgement finishes in the engine.
    private enum Acknowledges: Sendable {
        case task(TaskHandle)
        case deadLetter(OffsetTracker.Token)
    }

    private func record(_ taskId: String, _ value: [UInt8], _ topic: String, _ schema: MessageSchema) -> KafkaOutgoingRecord {
        KafkaOutgoingRecord(topic: topic, key: Array(taskId.utf8), value: value,
                            headers: [KafkaHeader(name: MessageSchema.headerKey, string: schema.headerValue)])
    }

    /// Queues the output; when the broker acknowledges it, its record is finished
    /// and the watermark may move. A failed delivery is retried: the watermark
    /// holds until the output is acknowledged, so nothing is lost.
    private func publish(_ acknowledges: Acknowledges, _ outgoing: KafkaOutgoingRecord) async {
        do {
            try await producer.enqueue(outgoing) { [weak self] result in
                guard let self else { return }
                switch result {
                case .success:
                    counters.acknowledged()
                    metrics.delivered(topic: outgoing.topic, success: true)
                    let actions = withEngine { engine in
                        switch acknowledges {
                        case .task(let handle): return engine.published(handle)
                        case .deadLetter(let token): return engine.deadLetterPublished(token)
                        }
                    }
                    perform(actions)
                case .failure(let error):
                    metrics.delivered(topic: outgoing.topic, success: false)
                    logger.error("result not delivered, retrying", metadata: ["topic": "\(outgoing.topic)", "error": "\(error)"])
                    Task {
                        try? await Task.sleep(for: .seconds(1))
                        await self.publish(acknowledges, outgoing)
                    }
                }
            }
        } catch {
            logger.error("result could not be queued; its record will be replayed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Rebalance (runs on the consumer's thread, inside librdkafka's callback)

    private func rebalanced(_ event: KafkaConsumer.RebalanceEvent) {
        switch event {
        case .assigned(let partitions):
            perform(withEngine { $0.assigned(partitions.map { PartitionID(topic: $0.topic, partition: $0.partition) }) })
            metrics.assigned() // the consumer logs the assignment
        case .revoked(let partitions, let lost):
            let actions = withEngine { $0.revoked(partitions.map { PartitionID(topic: $0.topic, partition: $0.partition) }) }
            if lost {
                // Another member may own them already: storing would move its offsets.
                perform(actions.filter { if case .storeOffset = $0 { return false } else { return true } })
            } else {
                perform(actions)
            }
            metrics.revoked(Array(partitions)) // the consumer logs the revoke
        }
    }
}

/// A one-way flag, safe from any thread.
public final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    public init() {}

    /// Sets the flag; false if it was already set.
    public func set() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if value { return false }
        value = true
        return true
    }
    public var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}
