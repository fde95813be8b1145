import CRdKafka
import Foundation
import Logging

/// A Kafka group consumer over librdkafka.
///
/// - Records arrive in batches through `batches` (one reader).
/// - The blocking `rd_kafka_consumer_poll` runs on a dedicated thread, never on the
///   cooperative pool. The rebalance handler runs synchronously on that thread
///   inside librdkafka's rebalance callback: for a revoke, *before* the partitions
///   are unassigned, so the application can store final offsets and drop their work.
/// - Offsets are stored explicitly (`enable.auto.offset.store=false`) and stored
///   offsets are auto-committed, or, with auto-commit off, committed explicitly with
///   `commit(_:)`, metadata included. Explicit commits run one at a time, in the
///   order they were asked for, also against the ones made in the rebalance handler.
/// - On an assignment the group's committed offsets and their metadata are read
///   first (one OffsetFetch) and handed to the rebalance handler; fetching starts at
///   those offsets.
/// - `close()` must be called: it commits stored offsets and leaves the group.
public final class KafkaConsumer: @unchecked Sendable {
    public enum RebalanceEvent: Sendable, Equatable {
        /// Partitions newly assigned to this member, with the group's committed offset
        /// and metadata of each (absent where nothing is committed). `committed` is nil
        /// when the committed offsets could not be read: fetching then starts from what
        /// librdkafka reads itself, without metadata.
        case assigned([TopicPartition], committed: [TopicPartition: TopicPartitionOffset]?)
        /// Partitions taken away; `lost` when they were lost (session timeout, fatal)
        /// rather than revoked in an orderly way — another member may own them already.
        case revoked([TopicPartition], lost: Bool)
    }

    public typealias RebalanceHandler = (RebalanceEvent) -> Void

    private enum State {
        case created
        case running
        case closing
        case closed
    }

    public let configuration: KafkaConsumerConfiguration
    let client: RDKafkaClient
    let consumerQueue: OpaquePointer
    let logger: Logger
    let buffer: RecordBuffer

    // Guarded by `lock`.
    let lock = NSLock()
    private var state = State.created
    var assignment = Set<TopicPartition>()
    var pausedPartitions = Set<TopicPartition>()
    var pauseAllAssigned = false
    var rebalanceHandler: RebalanceHandler?
    var rebalanceGeneration = 0
    /// Whether an assignment (even an empty one) has reached this member yet.
    var hasBeenAssigned = false
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []

    /// Held for the whole of an explicit commit, from building its offsets to the
    /// broker's answer: commits never overtake each other.
    let commitLock = NSLock()
    /// Explicit commits wait while the group rebalances. librdkafka 2.0.2 drops the
    /// whole assignment as lost when a commit sent with the old generation gets
    /// ILLEGAL_GENERATION (librdkafka #4059, fixed upstream years later), and the next
    /// owners then repeat everything finished since the last commit. So, like
    /// librdkafka's own auto-commit, commits go out only in the `steady` join state,
    /// which librdkafka reports in its `cgrp` debug log (turned on for this), and
    /// after a commit met a rebalance they wait for the next rebalance callback
    /// (at most the session timeout).
    let group: GroupState

    var clientHandle: OpaquePointer { client.handle }
    var clientContext: RDKafkaCallbackContext { client.context }
    var currentRebalanceGeneration: Int { lock.withLock { rebalanceGeneration } }

    /// Polling thread, after the consumer is closed: wakes every `close()` caller.
    func markClosed() {
        let waiters = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            state = .closed
            defer { closeWaiters.removeAll() }
            return closeWaiters
        }
        waiters.forEach { $0.resume() }
    }

    public init(configuration: KafkaConsumerConfiguration, logger: Logger,
                eventHandler: KafkaClientEventHandler? = nil) throws {
        self.configuration = configuration
        self.logger = logger
        self.buffer = RecordBuffer(capacity: configuration.maxBufferedBatches, maxBytes: configuration.maxBufferedBytes)
        let group = GroupState()
        self.group = group
        let context = RDKafkaCallbackContext(logger: logger, eventHandler: eventHandler,
                                             joinState: { group.joinStateChanged(to: $0) })
        let client = try RDKafkaClient(kind: .consumer, properties: configuration.rdKafkaProperties,
                                       context: context) { conf in
            rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
                guard let rk, let partitions else { return }
                if let ctx = RDKafkaCallbackContext.from(opaque), let rebalance = ctx.rebalance {
                    rebalance(rk, err, partitions)
                } else {
                    KafkaConsumer.applyDefaultRebalance(rk, err, partitions)
                }
            }
        }
        self.client = client
        rd_kafka_poll_set_consumer(client.handle)
        self.consumerQueue = rd_kafka_queue_get_consumer(client.handle)
        context.rebalance = { [weak self] rk, err, partitions in
            if let self {
                self.handleRebalance(rk, err, partitions)
            } else {
                KafkaConsumer.applyDefaultRebalance(rk, err, partitions)
            }
        }
    }

    deinit {
        rd_kafka_queue_destroy(consumerQueue)
    }

    /// Registers the handler that sees every assignment change. Set it before
    /// `subscribe`; it runs on the polling thread and must not block for long.
    public func setRebalanceHandler(_ handler: @escaping RebalanceHandler) {
        lock.withLock { rebalanceHandler = handler }
    }

    /// Subscribes to `topics` and starts the polling thread.
    public func subscribe(topics: [String]) throws {
        try lock.withLock {
            guard state == .created else {
                throw KafkaError(.consumer, "subscribe called twice or after close")
            }
            let err = RDKafkaTopicPartitionList.with(topics.map { (TopicPartition($0, RD_KAFKA_PARTITION_UA), 0) }) {
                rd_kafka_subscribe(client.handle, $0)
            }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(.consumer, "subscribe to \(topics)", err: err)
            }
            state = .running
        }
        let thread = Thread { [self] in pollLoop() }
        thread.name = "ezpoll.kafka-consumer"
        thread.start()
    }

    /// Batches of records, in partition order. Ends after `close()`.
    public var batches: Batches { Batches(buffer: buffer) }

    public struct Batches: AsyncSequence, Sendable {
        public typealias Element = [KafkaRecord]
        let buffer: RecordBuffer

        public struct AsyncIterator: AsyncIteratorProtocol {
            let buffer: RecordBuffer
            public mutating func next() async -> [KafkaRecord]? { await buffer.next() }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }
    }

    /// The partitions currently assigned to this member.
    public var assignedPartitions: Set<TopicPartition> {
        lock.withLock { assignment }
    }

    // MARK: Offsets

    /// Stores `offset` (the next offset to read) for a partition; auto-commit sends it.
    public func storeOffset(topic: String, partition: Int32, offset: Int64) throws {
        try storeOffsets([TopicPartitionOffset(TopicPartition(topic, partition), offset: offset)])
    }

    /// Stores offsets (each the next offset to read). Fails for a partition that is
    /// not assigned to this member.
    public func storeOffsets(_ offsets: [TopicPartitionOffset]) throws {
        guard !offsets.isEmpty else { return }
        try RDKafkaTopicPartitionList.with(offsets.map { ($0.topicPartition, $0.offset) }) { list in
            let err = rd_kafka_offsets_store(client.handle, list)
            let failed = RDKafkaTopicPartitionList.entries(list).filter { $0.err != RD_KAFKA_RESP_ERR_NO_ERROR }
            if let first = failed.first {
                throw KafkaError(.consumer, "store offset \(first.topicPartition)@\(first.offset)", err: first.err)
            }
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(.consumer, "store offsets", err: err)
            }
        }
    }

    /// Commits the offsets `make` returns, with their metadata, and waits for the
    /// broker's answer. `make` runs under the commit lock, so a state it reads is
    /// never committed after a newer one. Blocks: call it off the cooperative pool
    /// (the rebalance handler may). Returns the partitions whose commit failed, or nil
    /// without calling `make` while commits are held because the group is rebalancing
    /// (commit again later; the rebalance handler's own commits are never held, and
    /// `force` sends it anyway).
    @discardableResult
    public func commitBlocking(force: Bool = false, _ make: () -> [TopicPartitionOffset]) -> [TopicPartition: KafkaError]? {
        commitLock.lock()
        defer { commitLock.unlock() }
        if !force, !isInRebalanceCallback,
           group.commitsHeld(sessionTimeout: Double(configuration.effectiveSessionTimeoutMs) / 1_000) {
            return nil
        }
        let offsets = make()
        guard !offsets.isEmpty else { return [:] }
        let failed = RDKafkaTopicPartitionList.with(offsets: offsets) { list in
            let err = rd_kafka_commit(client.handle, list, 0)
            var failed: [TopicPartition: KafkaError] = [:]
            for entry in RDKafkaTopicPartitionList.entries(list) where entry.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                failed[entry.topicPartition] = KafkaError(.consumer, "commit \(entry.topicPartition)@\(entry.offset)", err: entry.err)
            }
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                for entry in offsets where failed[entry.topicPartition] == nil {
                    failed[entry.topicPartition] = KafkaError(.consumer, "commit \(entry)", err: err)
                }
            }
            return failed
        }
        if failed.values.contains(where: \.isRebalanceConflict), !isInRebalanceCallback {
            group.metRebalance()
            logger.info("commit met a group rebalance: commits wait for it to end")
        }
        return failed
    }

    /// Waits (at most `timeout`) until explicit commits may go out: the group is not
    /// rebalancing. A member that stops in the middle of a rebalance finishes it first,
    /// so its final commit carries a current generation and is not refused.
    /// Returns whether commits are allowed.
    public func waitUntilCommitsAllowed(timeout: Duration) async -> Bool {
        let sessionTimeout = Double(configuration.effectiveSessionTimeoutMs) / 1_000
        let deadline = ContinuousClock.now + timeout
        while group.commitsHeld(sessionTimeout: sessionTimeout) {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Whether the current thread runs the rebalance callback (its commits are not held).
    var isInRebalanceCallback: Bool { Thread.current.threadDictionary[Self.rebalanceThreadKey] != nil }
    static let rebalanceThreadKey = "ezpoll.kafka.in-rebalance-callback"

    /// Commits the stored offsets now and waits for the broker's answer.
    public func commit() async throws {
        let client = self.client
        try await Blocking.run {
            let err = rd_kafka_commit(client.handle, nil, 0)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
                throw KafkaError(.consumer, "commit", err: err)
            }
        }
    }

    /// The group's committed offsets for `partitions` (nil where nothing is committed).
    public func committedOffsets(for partitions: [TopicPartition], timeoutMs: Int32 = 10_000) async throws -> [TopicPartition: Int64?] {
        let committed = try await committed(for: partitions, timeoutMs: timeoutMs)
        return Dictionary(uniqueKeysWithValues: partitions.map { ($0, committed[$0]?.offset) })
    }

    /// The group's committed offsets with their metadata; partitions with nothing committed are absent.
    public func committed(for partitions: [TopicPartition], timeoutMs: Int32 = 10_000) async throws -> [TopicPartition: TopicPartitionOffset] {
        try await Blocking.run { [self] in try committedBlocking(partitions, timeoutMs: timeoutMs) }
    }

    /// Blocks for the broker's answer (also inside the rebalance callback).
    func committedBlocking(_ partitions: [TopicPartition], timeoutMs: Int32) throws -> [TopicPartition: TopicPartitionOffset] {
        try RDKafkaTopicPartitionList.with(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) }) { list in
            let err = rd_kafka_committed(client.handle, list, timeoutMs)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(.consumer, "committed offsets", err: err)
            }
            let metadata = RDKafkaTopicPartitionList.metadata(list)
            var result: [TopicPartition: TopicPartitionOffset] = [:]
            for entry in RDKafkaTopicPartitionList.entries(list) {
                if entry.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError(.consumer, "committed offset of \(entry.topicPartition)", err: entry.err)
                }
                guard entry.offset >= 0 else { continue }
                result[entry.topicPartition] = TopicPartitionOffset(entry.topicPartition, offset: entry.offset,
                                                                    metadata: metadata[entry.topicPartition])
            }
            return result
        }
    }

    // MARK: Pause and resume

    /// Stops fetching these partitions until `resume`. Survives rebalances: a paused
    /// partition that is revoked and assigned again comes back paused.
    public func pause(_ partitions: [TopicPartition]) {
        let assigned = lock.withLock { () -> [TopicPartition] in
            pausedPartitions.formUnion(partitions)
            return partitions.filter { assignment.contains($0) }
        }
        setPaused(assigned, paused: true)
    }

    /// Fetches these partitions again (unless every partition is paused by `pauseAll`).
    public func resume(_ partitions: [TopicPartition]) {
        let assigned = lock.withLock { () -> [TopicPartition] in
            pausedPartitions.subtract(partitions)
            return pauseAllAssigned ? [] : partitions.filter { assignment.contains($0) }
        }
        setPaused(assigned, paused: false)
    }

    /// Pauses every assigned partition and every partition assigned later, until `resumeAll`.
    public func pauseAll() {
        let assigned = lock.withLock { () -> [TopicPartition] in
            pauseAllAssigned = true
            return Array(assignment)
        }
        setPaused(assigned, paused: true)
    }

    /// Ends `pauseAll`; partitions paused one by one stay paused.
    public func resumeAll() {
        let toResume = lock.withLock { () -> [TopicPartition] in
            pauseAllAssigned = false
            return assignment.filter { !pausedPartitions.contains($0) }
        }
        setPaused(toResume, paused: false)
    }

    /// Whether records of `partition` are held back right now.
    public func isPaused(_ partition: TopicPartition) -> Bool {
        lock.withLock { pauseAllAssigned || pausedPartitions.contains(partition) }
    }

    func setPaused(_ partitions: [TopicPartition], paused: Bool) {
        guard !partitions.isEmpty else { return }
        RDKafkaTopicPartitionList.with(partitions.map { ($0, 0) }) { list in
            let err = paused ? rd_kafka_pause_partitions(client.handle, list) : rd_kafka_resume_partitions(client.handle, list)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.warning("\(paused ? "pause" : "resume") \(partitions): \(String(cString: rd_kafka_err2str(err)))")
            }
        }
    }

    // MARK: Close

    /// Commits stored offsets, leaves the group (so another member takes the
    /// partitions at once) and ends `batches`. Safe to call more than once.
    public func close() async {
        let mustWait: Bool = lock.withLock {
            switch state {
            case .created:
                state = .closed
                return false
            case .running:
                state = .closing
                return true
            case .closing:
                return true
            case .closed:
                return false
            }
        }
        guard mustWait else {
            buffer.finish()
            return
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let closed = lock.withLock { () -> Bool in
                if state == .closed { return true }
                closeWaiters.append(continuation)
                return false
            }
            if closed { continuation.resume() }
            buffer.requestClose()
        }
    }
}
