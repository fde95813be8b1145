import Foundation
import Kafka
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskAPI
import Tracing

/// `ezpoll run`: task events in, solutions / failures / dead letters out (ARCHITECTURE.md).
///
/// The driver around `PollingEngine`: an ingest loop (consumer batches → decode →
/// core), a dispatch loop (due polls → HTTP calls, bounded by the core's limits),
/// the publisher (producer with a delivery callback that finishes offsets), the
/// commit loop (offsets with finished-offset metadata, shortly after acks) and the
/// rebalance handler (assign: skip what the last owner finished; revoke: let calls
/// in progress finish and their outputs be acknowledged, commit, drop the rest).
/// Every core call runs under one lock; its actions run after the lock is released.
public final class Pipeline: Service, Sendable {
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
        /// Longest a graceful stop or a revoke waits for calls in progress and for the
        /// acknowledgement of their results before it commits and gives the partitions up.
        public var drainTimeout: Duration = .seconds(10)
        /// How soon after an acknowledgement its offset is committed (with the finished
        /// offsets above the watermark in the metadata): the most a crash repeats.
        public var commitInterval: Duration = .milliseconds(250)
        /// How long a result the broker refused (or that could not be queued) waits
        /// before it is sent again. Its record's offset holds meanwhile.
        public var publishRetryDelay: Duration = .seconds(1)
        /// The rate limit is the account's, shared by the group: each member uses its
        /// input partitions' share of it, updated on every rebalance. False: each process
        /// uses the whole rate.
        public var shareRateLimitWithGroup = true
        /// A partition whose committed offset stands still this long while records wait
        /// above it makes the member unready (`/health/ready`); nil: never.
        public var stallThreshold: Duration?
        /// How often the broker-side lag of the assigned partitions is read
        /// (`ezpoll_partition_broker_lag`); nil: never.
        public var brokerLagInterval: Duration? = .seconds(15)
        /// A span per task through the process's tracer (`TaskTracing`; `ezpoll run` sets it
        /// when an OTLP exporter is configured). Default: false.
        public var traceTasks = false

        public init(engine: PollingEngine.Configuration, consumer: KafkaConsumerConfiguration, producer: KafkaProducerConfiguration) {
            self.engine = engine
            self.consumer = consumer
            self.producer = producer
        }
    }

    public let configuration: Configuration
    let client: any TaskResultFetching
    /// Clients by route name (`PollingEngine.Configuration.providers`); others use `client`.
    let clients: [String: any TaskResultFetching]
    let logger: Logger
    let consumer: any PipelineInput
    let producer: any PipelineOutput
    /// The core, behind one lock; its actions run after the lock is released.
    let engine: NIOLockedValueBox<PollingEngine>
    let counters = PipelineCounters()
    let wakeup = Wakeup()
    let stopRequested = OnceFlag()
    /// Signalled when calls or publishes of draining partitions finish.
    let drained = NSCondition()
    /// Held while the consumer's pause state is brought to the engine's wish. Actions run
    /// after the engine's lock, on several threads (dispatcher, call completions, delivery
    /// reports, the rebalance callback), so a pause and a later resume could reach the
    /// consumer in the other order and leave it paused with nothing left to resume it;
    /// each application therefore reads the wish anew (`applyFetchWish`).
    let fetchWish = NIOLock()
    let commitRequests: AsyncStream<Void>
    let commitRequester: AsyncStream<Void>.Continuation
    /// Prometheus metrics and the state behind `/health` (Observability/).
    public let metrics: PipelineMetrics
    /// Partitions of the input topic at the last metadata answer.
    let inputPartitionCount = NIOLockedValueBox<Int?>(nil)
    /// A span per task, when `traceTasks`.
    let tracing: TaskTracing?
    /// Accounts whose balance `BalanceWatch` found empty: while any is, the input is held.
    let emptyAccounts = NIOLockedValueBox<Set<String>>([])

    /// A pipeline on Kafka: builds its consumer (explicit commits) and producer.
    public convenience init(configuration: Configuration, client: any TaskResultFetching,
                            providerClients: [String: any TaskResultFetching] = [:], logger: Logger,
                            eventHandler: KafkaClientEventHandler? = nil, metrics: PipelineMetrics = PipelineMetrics()) throws {
        let events: KafkaClientEventHandler = { event in
            metrics.kafkaEvent(event)
            eventHandler?(event)
        }
        // Commits are explicit, with metadata: auto-commit would overwrite it.
        var consumerConfiguration = configuration.consumer
        consumerConfiguration.autoCommitIntervalMs = nil
        consumerConfiguration.properties["enable.auto.commit"] = nil
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: logger, eventHandler: events)
        let producer = try KafkaProducer(configuration: configuration.producer, logger: logger, eventHandler: events)
        self.init(configuration: configuration, input: consumer, output: producer, client: client,
                  providerClients: providerClients, logger: logger, metrics: metrics)
    }

    /// A pipeline on any input and output (the driver's tests pass scripted ones).
    /// `providerClients`: the client of each provider route by its name; `client` serves the rest.
    public init(configuration: Configuration, input: any PipelineInput, output: any PipelineOutput,
                client: any TaskResultFetching, providerClients: [String: any TaskResultFetching] = [:],
                logger: Logger, metrics: PipelineMetrics = PipelineMetrics()) {
        self.configuration = configuration
        self.client = client
        self.clients = providerClients
        self.logger = logger
        self.metrics = metrics
        self.engine = NIOLockedValueBox(PollingEngine(configuration: configuration.engine))
        self.tracing = configuration.traceTasks ? TaskTracing(tracer: InstrumentationSystem.tracer) : nil
        (commitRequests, commitRequester) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.consumer = input
        self.producer = output
    }

    func withEngine<R>(_ body: (inout PollingEngine) -> R) -> R {
        engine.withLockedValue(body)
    }

    /// What the pipeline has done so far.
    public var snapshot: PipelineCounters.Snapshot { counters.snapshot }
    public var inFlight: Int { withEngine { $0.inFlightCount } }
    /// True while the in-flight bound holds the input paused (the backlog waits in Kafka).
    public var isInputPaused: Bool { withEngine { $0.isFetchingPaused } }
    /// Records fetched before the input paused, waiting at the in-flight bound.
    public var heldInput: Int { withEngine { $0.heldInputCount } }
    /// getTaskResult calls per second allowed now (rate limit × group share ÷ slowdown).
    public var callsPerSecond: Double { withEngine { $0.callsPerSecond } }
    public var assignedPartitions: Set<TopicPartition> { consumer.assignedPartitions }

    /// Asks `run()` to stop gracefully: no new records or polls, calls in progress
    /// finish (at most the drain timeout), their results are acknowledged, offsets and
    /// finished-offset metadata committed, and the consumer leaves the group.
    public func shutdown() {
        guard stopRequested.set() else { return }
        metrics.stopping()
        logger.info("shutdown requested")
        consumer.pauseAll()
        perform(withEngine { $0.revoking($0.assignedPartitions) })
        wakeup.signal()
    }

    /// Runs until `shutdown()` or, inside a `ServiceGroup`, its graceful shutdown; then
    /// drains and returns.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await runUntilStopped()
        } onGracefulShutdown: { [self] in
            shutdown()
        }
    }

    func runUntilStopped() async throws {
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
        async let commits: Void = commitLoop()
        let lagSampler = configuration.brokerLagInterval.map { interval in Task { await brokerLagLoop(every: interval) } }
        await dispatchLoop()
        lagSampler?.cancel()

        // Graceful drain: the calls in progress are done (or cut off at the drain
        // timeout) and their results acknowledged; commit, then leave the group.
        do {
            try await producer.flush(timeoutMs: 1_000)
        } catch {
            logger.error("results not acknowledged before shutdown; their records will be processed again: \(error)")
        }
        commitRequester.finish()
        await commits
        // Mid-rebalance a commit would be refused (and cost the assignment): finish the
        // rebalance first; the consumer keeps serving the group meanwhile.
        if !(await consumer.waitUntilCommitsAllowed(timeout: configuration.drainTimeout)) {
            logger.warning("the group is still rebalancing after the drain timeout; committing anyway")
        }
        await commitPending(final: true)
        await consumer.close()
        await ingest
        await producer.close(timeoutMs: 5_000)
        let totals = counters.snapshot
        logger.info("pipeline stopped", metadata: [
            "consumed": "\(totals.recordsConsumed)", "solved": "\(totals.solved)",
            "failed": "\(totals.failedTotal)", "deadLetters": "\(totals.deadLetterTotal)", "polls": "\(totals.polls)",
        ])
    }
}

/// A one-way flag, safe from any thread.
public final class OnceFlag: Sendable {
    private let value = NIOLockedValueBox(false)

    public init() {}

    /// Sets the flag; false if it was already set.
    public func set() -> Bool {
        value.withLockedValue { set in
            defer { set = true }
            return !set
        }
    }

    public var isSet: Bool { value.withLockedValue { $0 } }
}

extension PollingEngine.Action {
    /// Publishing is async (the producer's queue may be full); everything else is not.
    var publishes: Bool {
        switch self {
        case .publishSolution, .publishFailure, .publishDeadLetter: return true
        default: return false
        }
    }
}
