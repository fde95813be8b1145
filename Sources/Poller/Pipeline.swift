import Foundation
import Kafka
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskAPI

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

        public init(engine: PollingEngine.Configuration, consumer: KafkaConsumerConfiguration, producer: KafkaProducerConfiguration) {
            self.engine = engine
            self.consumer = consumer
            self.producer = producer
        }
    }

    public let configuration: Configuration
    private let client: any TaskResultFetching
    /// Clients by route name (`PollingEngine.Configuration.providers`); others use `client`.
    private let clients: [String: any TaskResultFetching]
    private let logger: Logger
    let consumer: any PipelineInput
    private let producer: any PipelineOutput
    /// The core, behind one lock; its actions run after the lock is released.
    private let engine: NIOLockedValueBox<PollingEngine>
    private let counters = PipelineCounters()
    private let wakeup = Wakeup()
    let stopRequested = OnceFlag()
    /// Signalled when calls or publishes of draining partitions finish.
    private let drained = NSCondition()
    /// Held while the consumer's pause state is brought to the engine's wish. Actions run
    /// after the engine's lock, on several threads (dispatcher, call completions, delivery
    /// reports, the rebalance callback), so a pause and a later resume could reach the
    /// consumer in the other order and leave it paused with nothing left to resume it;
    /// each application therefore reads the wish anew (`applyFetchWish`).
    private let fetchWish = NIOLock()
    private let commitRequests: AsyncStream<Void>
    private let commitRequester: AsyncStream<Void>.Continuation
    /// Prometheus metrics and the state behind `/health` (Observability/).
    public let metrics: PipelineMetrics
    /// Partitions of the input topic at the last metadata answer.
    private let inputPartitionCount = NIOLockedValueBox<Int?>(nil)

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

    private func runUntilStopped() async throws {
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
        await dispatchLoop()

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

    // MARK: Ingest

    private func ingestLoop() async {
        while let batch = await consumer.nextBatch() {
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

    /// Each tick's calls go to their provider's client as one batch; their completions
    /// come back on the client's event loop (`completed`), not as a task per call.
    private func dispatchLoop() async {
        while !stopRequested.isSet {
            let now = WallClock.now()
            let (actions, next) = withEngine { engine in (engine.tick(now: now), engine.nextWakeup(now: now)) }
            var rest: [PollingEngine.Action] = []
            var calls: [TaskResultCall] = []
            var providers: [String] = []
            let started = ContinuousClock.now
            for action in actions {
                if case .call(let handle, let taskId, let key, let provider) = action {
                    calls.append(TaskResultCall(taskId: taskId, clientKey: key) { [self] outcome in
                        completed(handle, clientKey: key, started: started, outcome: outcome)
                    })
                    providers.append(provider)
                } else {
                    rest.append(action)
                }
            }
            if !calls.isEmpty {
                counters.polled(calls.count)
                start(calls, providers: providers)
            }
            await performAsync(rest)
            await wakeup.wait(until: next)
        }
        // Calls still running after the drain end when the client closes (after the pipeline).
        await drain(withEngine { Set($0.assignedPartitions) })
    }

    /// Hands each client its calls in one batch.
    private func start(_ calls: [TaskResultCall], providers: [String]) {
        guard !clients.isEmpty else { return client.start(calls) }
        var batches: [String: [TaskResultCall]] = [:]
        for (call, provider) in zip(calls, providers) { batches[provider, default: []].append(call) }
        for (provider, batch) in batches { (clients[provider] ?? client).start(batch) }
    }

    /// A call's outcome, on the client's thread: the engine decides, the dispatcher is
    /// woken only when this makes a poll due before it would wake anyway.
    private func completed(_ handle: TaskHandle, clientKey: ClientKey, started: ContinuousClock.Instant, outcome: TaskOutcome) {
        metrics.polled(outcome, duration: ContinuousClock.now - started)
        let now = WallClock.now()
        let (actions, next) = withEngine { engine in
            (engine.callCompleted(handle, clientKey: clientKey, outcome: PollOutcome(outcome), now: now), engine.nextWakeup(now: now))
        }
        wakeup.signal(ifDueBefore: next)
        signalDrained()
        guard !actions.isEmpty else { return }
        if actions.contains(where: \.publishes) {
            Task { await performAsync(actions) }
        } else {
            perform(actions)
        }
    }

    // MARK: Drain and commit

    /// Waits until the partitions have no call in progress and no unacknowledged
    /// output, or the drain timeout passed. Blocks: the rebalance callback calls it on
    /// the consumer's thread; `drain(_:) async` runs it on a thread of its own.
    private func drainBlocking(_ partitions: Set<PartitionID>) {
        guard !partitions.isEmpty else { return }
        let deadline = Date().addingTimeInterval(Double(configuration.drainTimeout.milliseconds) / 1_000)
        var busy = withEngine { $0.busyCount(in: partitions) }
        while busy > 0 && Date() < deadline {
            drained.lock()
            // Bounded wait: a signal between the count and the wait costs at most this.
            _ = drained.wait(until: min(deadline, Date().addingTimeInterval(0.05)))
            drained.unlock()
            busy = withEngine { $0.busyCount(in: partitions) }
        }
        if busy > 0 {
            logger.warning("drain timeout: calls or results still pending; those records will be processed again",
                           metadata: ["pending": "\(busy)", "partitions": "\(partitions.sorted { $0.description < $1.description })"])
        }
    }

    private func drain(_ partitions: Set<PartitionID>) async {
        await Self.offThread { [self] in drainBlocking(partitions) }
    }

    /// Runs blocking work on a thread of its own, never on the cooperative pool.
    private static func offThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: body()) }
        }
    }

    private func signalDrained() {
        drained.lock()
        drained.broadcast()
        drained.unlock()
    }

    /// Commits shortly after something finished; idle when nothing changes.
    private func commitLoop() async {
        for await _ in commitRequests {
            try? await Task.sleep(for: configuration.commitInterval)
            await commitPending()
        }
    }

    /// Commits every partition that changed, offsets and finished-offset metadata.
    /// `final`: the last commit of a graceful stop, sent even mid-rebalance.
    private func commitPending(final: Bool = false) async {
        await Self.offThread { [self] in
            var commits: [OffsetTracker.Commit] = []
            guard let failed = consumer.commitBlocking(force: final, {
                commits = withEngine { $0.pendingCommits() }
                return commits.map(Self.kafkaOffset)
            }) else {
                commitRequester.yield() // held while the group rebalances: try again after the interval
                return
            }
            let refused = commits.filter { failed[Self.topicPartition($0)] != nil }
            if !refused.isEmpty {
                if final {
                    logger.warning("final commit on stop failed; the next owner repeats what finished since the last commit",
                                   metadata: ["errors": "\(failed.values.map(\.message))"])
                } else {
                    logger.warning("offset commit failed; retrying", metadata: ["errors": "\(failed.values.map(\.message))"])
                    perform(withEngine { $0.commitFailed(refused) })
                }
            }
            committed(commits.filter { failed[Self.topicPartition($0)] == nil })
        }
    }

    private func committed(_ done: [OffsetTracker.Commit]) {
        guard !done.isEmpty else { return }
        metrics.committed(done)
        for commit in done where commit.truncated {
            logger.warning("finished offsets above the watermark exceed the commit metadata cap; a crash or handover repeats the rest",
                           metadata: ["partition": "\(commit.partition)", "offset": "\(commit.offset)"])
        }
    }

    /// Commits inside the rebalance callback (never held: the generation is current).
    private func commitInRebalance(_ commits: [OffsetTracker.Commit], final: Bool) {
        let failed = consumer.commitBlocking(force: false) { commits.map(Self.kafkaOffset) } ?? [:]
        let refused = commits.filter { failed[Self.topicPartition($0)] != nil }
        if !refused.isEmpty {
            logger.warning(final ? "final commit on revoke failed; another owner repeats what finished since the last commit (this member skips it if the partition comes back)"
                                 : "commit at the start of a revoke failed",
                           metadata: ["errors": "\(failed.values.map(\.message))"])
            if final {
                withEngine { $0.finalCommitsRefused(refused) }
            } else {
                perform(withEngine { $0.commitFailed(refused) })
            }
        }
        committed(commits.filter { failed[Self.topicPartition($0)] == nil })
    }

    static func topicPartition(_ commit: OffsetTracker.Commit) -> TopicPartition {
        TopicPartition(commit.partition.topic, commit.partition.partition)
    }

    static func kafkaOffset(_ commit: OffsetTracker.Commit) -> TopicPartitionOffset {
        TopicPartitionOffset(topicPartition(commit), offset: commit.offset, metadata: commit.metadata)
    }

    // MARK: Actions

    /// Everything but publishing and calling; safe on any thread (also inside the
    /// rebalance callback and the delivery callback).
    private func perform(_ actions: [PollingEngine.Action]) {
        for action in actions {
            switch action {
            case .commitSoon:
                commitRequester.yield()
            case .skippedFinished(let partition, let offset):
                counters.skippedFinished()
                logger.debug("skipped: finished by the last owner", metadata: ["partition": "\(partition)", "offset": "\(offset)"])
            case .commitMetadataIgnored(let partition, let reason):
                logger.warning("commit metadata ignored; records finished above the committed offset will be processed again",
                               metadata: ["partition": "\(partition)", "reason": "\(reason)"])
            case .pauseFetching:
                logger.info("in-flight limit reached: pausing input", metadata: ["inFlight": "\(withEngine { $0.inFlightLimit })"])
                applyFetchWish()
            case .takeHeldInput:
                wakeup.signal() // the dispatcher's tick takes them, then resumes the input
            case .resumeFetching:
                guard !stopRequested.isSet else { break } // stopping: the input stays paused
                logger.info("in flight below the low-water mark: resuming input")
                applyFetchWish()
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
    }

    /// Pauses or resumes the input as the engine wants it now (paused while stopping),
    /// whichever action asked: the last application follows the last change.
    private func applyFetchWish() {
        fetchWish.withLock {
            if stopRequested.isSet || withEngine({ $0.isFetchingPaused }) {
                consumer.pauseAll()
            } else {
                consumer.resumeAll()
            }
        }
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
                    signalDrained()
                case .failure(let error):
                    metrics.delivered(topic: outgoing.topic, success: false)
                    logger.error("result not delivered, retrying", metadata: ["topic": "\(outgoing.topic)", "error": "\(error)"])
                    retryPublish(acknowledges, outgoing)
                }
            }
        } catch {
            // Never dropped: the task keeps its partition's watermark until the output is
            // acknowledged (or the partition is revoked and its next owner processes it).
            guard !stopRequested.isSet else {
                logger.error("result could not be queued while stopping; its record will be processed again",
                             metadata: ["topic": "\(outgoing.topic)", "error": "\(error)"])
                return
            }
            logger.error("result could not be queued, retrying", metadata: ["topic": "\(outgoing.topic)", "error": "\(error)"])
            retryPublish(acknowledges, outgoing)
        }
    }

    private func retryPublish(_ acknowledges: Acknowledges, _ outgoing: KafkaOutgoingRecord) {
        Task {
            try? await Task.sleep(for: self.configuration.publishRetryDelay)
            await self.publish(acknowledges, outgoing)
        }
    }

    // MARK: Rebalance (runs on the consumer's thread, inside librdkafka's callback)

    private func rebalanced(_ event: KafkaConsumer.RebalanceEvent) {
        switch event {
        case .assigned(let partitions, let committed):
            let assigned = partitions.map { tp in
                PollingEngine.AssignedPartition(PartitionID(topic: tp.topic, partition: tp.partition),
                                                committedOffset: committed?[tp]?.offset, metadata: committed?[tp]?.metadata)
            }
            perform(withEngine { $0.assigned(assigned) })
            metrics.assigned() // the consumer logs the assignment
            updateCallShare(lookUpPartitions: true)
        case .revoked(let partitions, let lost):
            let ids = partitions.map { PartitionID(topic: $0.topic, partition: $0.partition) }
            if lost {
                // Another member may own them already: no drain, no commit.
                perform(withEngine { $0.revoked(ids, lost: true) }.actions)
            } else {
                // Commit what is acknowledged now, at once: the group may enter its next
                // join round while calls drain, and then refuses commits until it is over
                // (the embedded broker does; Kafka accepts them until the sync). Then calls
                // in progress finish, their outputs are acknowledged, and the final state
                // is committed while the partitions are still ours.
                perform(withEngine { $0.revoking(ids) })
                commitInRebalance(withEngine { $0.pendingCommits() }, final: false)
                drainBlocking(Set(ids))
                var actions: [PollingEngine.Action] = []
                var commits: [OffsetTracker.Commit] = []
                withEngine { engine in (commits, actions) = engine.revoked(ids) }
                perform(actions)
                commitInRebalance(commits, final: true)
            }
            metrics.revoked(Array(partitions)) // the consumer logs the revoke
            updateCallShare(lookUpPartitions: false)
        }
    }

    /// One key's rate limit is shared by the group: this member's share is its input
    /// partitions over all of them (the assignor spreads them evenly; a member's tasks
    /// come only from its partitions). Applied at once with the partition count known;
    /// on assignment the count is looked up again (a metadata request) on a thread of its
    /// own, so the rebalance callback never waits for it.
    private func updateCallShare(lookUpPartitions: Bool) {
        guard configuration.shareRateLimitWithGroup else { return }
        if let total = inputPartitionCount.withLockedValue({ $0 }) { applyCallShare(total: total) }
        guard lookUpPartitions else { return }
        let topic = configuration.topics.input
        Thread.detachNewThread { [self] in
            guard let total = consumer.partitionCount(of: topic, timeoutMs: 5_000), total > 0 else {
                logger.warning("the input topic's partition count is unknown; the call-rate share stays as it was", metadata: ["topic": "\(topic)"])
                return
            }
            inputPartitionCount.withLockedValue { $0 = total }
            applyCallShare(total: total)
        }
    }

    private func applyCallShare(total: Int) {
        let topic = configuration.topics.input
        let now = WallClock.now()
        let (mine, rate, changed) = withEngine { engine -> (Int, Double, Bool) in
            let mine = engine.assignedPartitions.filter { $0.topic == topic }.count
            let before = engine.callShare
            engine.setCallShare(Double(mine) / Double(total), now: now)
            return (mine, engine.callsPerSecond, engine.callShare != before)
        }
        guard changed else { return }
        logger.info("call budget shared by the group", metadata: [
            "partitions": "\(mine) of \(total)", "rateLimit": "\(configuration.engine.requestsPerSecond)",
            "callsPerSecond": "\((rate * 100).rounded() / 100)",
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
