import Foundation
import Logging
import NIOConcurrencyHelpers

/// A Kafka group consumer over librdkafka.
///
/// - Records arrive in batches through `batches` (one reader).
/// - librdkafka's blocking consumer poll runs on a dedicated thread, never on the
///   cooperative pool. The rebalance handler runs synchronously on that thread
///   inside librdkafka's rebalance callback: for a revoke, *before* the partitions
///   are unassigned, so the application can store final offsets and drop their work.
/// - Offsets are stored explicitly (`enable.auto.offset.store=false`) and stored
///   offsets are auto-committed, or, with auto-commit off, committed explicitly with
///   `commitBlocking(force:_:)`, metadata included. Explicit commits run one at a time, in the
///   order they were asked for, also against the ones made in the rebalance handler.
/// - On an assignment the group's committed offsets and their metadata are read
///   first (one OffsetFetch) and handed to the rebalance handler; fetching starts at
///   those offsets.
/// - `close()` must be called: it commits stored offsets and leaves the group.
public final class KafkaConsumer: Sendable {
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

    public typealias RebalanceHandler = @Sendable (RebalanceEvent) -> Void

    public let configuration: KafkaConsumerConfiguration
    let client: RDKafkaClient
    let logger: Logger
    let buffer: RecordBuffer
    /// Lifecycle, assignment, pauses and the group's join state (see `StateMachine`).
    /// Explicit commits wait while the group rebalances. librdkafka 2.0.2 drops the
    /// whole assignment as lost when a commit sent with the old generation gets
    /// ILLEGAL_GENERATION (librdkafka #4059, fixed upstream years later), and the next
    /// owners then repeat everything finished since the last commit. So, like
    /// librdkafka's own auto-commit, commits go out only in the `steady` join state,
    /// which librdkafka reports in its `cgrp` debug log (turned on for this), and
    /// after a commit met a rebalance they wait for the next rebalance callback
    /// (at most the session timeout).
    let state: NIOLockedValueBox<StateMachine>
    /// Held for the whole of an explicit commit, from building its offsets to the
    /// broker's answer: commits never overtake each other.
    let commitLock = NIOLock()
    /// Held from a pause-state change to its application in librdkafka (also by the
    /// assign callback), so changes from different threads reach librdkafka in the order
    /// they were made. Not the state's lock: librdkafka's own threads take that one.
    let pauseOrder = NIOLock()

    public init(configuration: KafkaConsumerConfiguration, logger: Logger,
                eventHandler: KafkaClientEventHandler? = nil) throws {
        self.configuration = configuration
        self.logger = logger
        let buffer = RecordBuffer(capacity: configuration.maxBufferedBatches, maxBytes: configuration.maxBufferedBytes)
        self.buffer = buffer
        let state = NIOLockedValueBox(StateMachine(sessionTimeout: .milliseconds(configuration.effectiveSessionTimeoutMs)))
        self.state = state
        let rebalancer = Rebalancer(configuration: configuration, logger: logger, state: state, pauseOrder: pauseOrder, buffer: buffer)
        let context = RDKafkaCallbackContext(logger: logger, eventHandler: eventHandler,
                                             joinState: { joinState in state.withLockedValue { $0.joinStateChanged(to: joinState) } },
                                             rebalance: { rebalancer.handle($0) })
        self.client = try RDKafkaClient(kind: .consumer, properties: configuration.rdKafkaProperties, context: context)
    }

    /// Registers the handler that sees every assignment change. Set it before
    /// `subscribe`; it runs on the polling thread and must not block for long.
    public func setRebalanceHandler(_ handler: @escaping RebalanceHandler) {
        state.withLockedValue { $0.setRebalanceHandler(handler) }
    }

    /// Subscribes to `topics` and starts the polling thread.
    public func subscribe(topics: [String]) throws {
        if case .fail(let error) = state.withLockedValue({ $0.subscribe() }) { throw error }
        do {
            try client.consumer.subscribe(topics)
        } catch {
            if case .finish(let waiters) = state.withLockedValue({ $0.subscribeFailed() }) { finish(waking: waiters) }
            throw error
        }
        state.withLockedValue { $0.subscribeSucceeded() }
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
        state.withLockedValue { $0.assignment }
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
        try client.consumer.storeOffsets(offsets)
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
        let inCallback = isInRebalanceCallback
        let action = state.withLockedValue { $0.commitRequested(force: force, inRebalanceCallback: inCallback, now: .now) }
        guard action == .commit else { return nil }
        let offsets = make()
        guard !offsets.isEmpty else { return [:] }
        let failed = client.consumer.commit(offsets)
        let metRebalance = failed.values.contains(where: \.isRebalanceConflict)
        if state.withLockedValue({ $0.commitFinished(metRebalance: metRebalance, inRebalanceCallback: inCallback, now: .now) }) {
            logger.info("commit met a group rebalance: commits wait for it to end")
        }
        return failed
    }

    /// Waits (at most `timeout`) until explicit commits may go out: the group is not
    /// rebalancing. A member that stops in the middle of a rebalance finishes it first,
    /// so its final commit carries a current generation and is not refused.
    /// Returns whether commits are allowed.
    public func waitUntilCommitsAllowed(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while state.withLockedValue({ $0.commitsHeld(now: .now) }) {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Whether the current thread runs the rebalance callback (its commits are not held).
    var isInRebalanceCallback: Bool { Thread.current.threadDictionary[Self.rebalanceThreadKey] != nil }
    static let rebalanceThreadKey = "ezpoll.kafka.in-rebalance-callback"

    /// The group's committed offsets for `partitions` (nil where nothing is committed).
    public func committedOffsets(for partitions: [TopicPartition], timeoutMs: Int32 = 10_000) async throws -> [TopicPartition: Int64?] {
        let committed = try await committed(for: partitions, timeoutMs: timeoutMs)
        return Dictionary(uniqueKeysWithValues: partitions.map { ($0, committed[$0]?.offset) })
    }

    /// The lag as a broker-side autoscaler (KEDA, Burrow) sees it: each partition's high
    /// watermark minus the group's committed offset (minus the low watermark where
    /// nothing is committed), both read from the brokers now.
    public func brokerLag(for partitions: [TopicPartition], timeoutMs: Int32 = 5_000) async throws -> [TopicPartition: Int64] {
        let client = self.client
        return try await Blocking.run {
            let committed = try client.consumer.committed(partitions, timeoutMs: timeoutMs)
            var lag: [TopicPartition: Int64] = [:]
            for partition in partitions {
                let marks = try client.consumer.watermarks(partition, timeoutMs: timeoutMs)
                lag[partition] = max(0, marks.high - max(committed[partition]?.offset ?? marks.low, marks.low))
            }
            return lag
        }
    }

    /// The group's committed offsets with their metadata; partitions with nothing committed are absent.
    public func committed(for partitions: [TopicPartition], timeoutMs: Int32 = 10_000) async throws -> [TopicPartition: TopicPartitionOffset] {
        let client = self.client
        return try await Blocking.run { try client.consumer.committed(partitions, timeoutMs: timeoutMs) }
    }

    // MARK: Pause and resume

    /// Stops fetching these partitions until `resume`. Survives rebalances: a paused
    /// partition that is revoked and assigned again comes back paused.
    public func pause(_ partitions: [TopicPartition]) {
        changePause(paused: true) { $0.pause(partitions) }
    }

    /// Fetches these partitions again (unless every partition is paused by `pauseAll`).
    public func resume(_ partitions: [TopicPartition]) {
        changePause(paused: false) { $0.resume(partitions) }
    }

    /// Pauses every assigned partition and every partition assigned later, until `resumeAll`.
    public func pauseAll() {
        changePause(paused: true) { $0.pauseAll() }
    }

    /// Ends `pauseAll`; partitions paused one by one stay paused.
    public func resumeAll() {
        changePause(paused: false) { $0.resumeAll() }
    }

    /// Whether records of `partition` are held back right now.
    public func isPaused(_ partition: TopicPartition) -> Bool {
        state.withLockedValue { $0.isPaused(partition) }
    }

    /// Changes the pause state and applies it to librdkafka, in order (`pauseOrder`).
    private func changePause(paused: Bool, _ change: (inout StateMachine) -> [TopicPartition]) {
        pauseOrder.withLock {
            client.consumer.setPaused(state.withLockedValue(change), paused: paused, logger: logger)
        }
    }

    // MARK: Close

    /// Commits stored offsets, leaves the group (so another member takes the
    /// partitions at once) and ends `batches`. Safe to call more than once.
    public func close() async {
        switch state.withLockedValue({ $0.close() }) {
        case .none:
            return
        case .finish(let waiters):
            finish(waking: waiters)
        case .stopPollingAndWait:
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if !state.withLockedValue({ $0.addCloseWaiter(continuation) }) { continuation.resume() }
                buffer.requestClose()
            }
        }
    }

    /// Ends `batches` and wakes `close()` callers.
    func finish(waking waiters: [CheckedContinuation<Void, Never>]) {
        buffer.finish()
        waiters.forEach { $0.resume() }
    }
}
