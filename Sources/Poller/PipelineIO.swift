import Kafka

/// What the pipeline needs of its input: a member of a consumer group with explicit
/// commits. `KafkaConsumer` is the real one; the driver's tests script a fake.
public protocol PipelineInput: Sendable {
    /// Called on the input's own thread, inside the rebalance: the pipeline drains and
    /// commits there before it returns.
    func setRebalanceHandler(_ handler: @escaping KafkaConsumer.RebalanceHandler)
    func subscribe(topics: [String]) throws
    /// The next batch of records, in partition order; nil once the input is closed.
    func nextBatch() async -> [KafkaRecord]?
    var assignedPartitions: Set<TopicPartition> { get }
    func pauseAll()
    func resumeAll()
    /// Whether fetching this partition is paused now (by `pauseAll` or on its own).
    func isPaused(_ partition: TopicPartition) -> Bool
    /// Commits what `make` returns (called under the input's commit lock). Nil: held
    /// back because the group is rebalancing (`force` sends it anyway); otherwise the
    /// partitions whose commit failed.
    func commitBlocking(force: Bool, _ make: () -> [TopicPartitionOffset]) -> [TopicPartition: KafkaError]?
    /// Waits until a commit would not be held back (the group is not rebalancing).
    func waitUntilCommitsAllowed(timeout: Duration) async -> Bool
    /// How many partitions `topic` has; nil when the cluster did not answer in time.
    /// May block up to `timeoutMs` (it runs inside the rebalance callback).
    func partitionCount(of topic: String, timeoutMs: Int32) -> Int?
    /// True when the group coordinator answered a request within the timeout.
    func coordinatorReachable(probing partition: TopicPartition, timeoutMs: Int32) async -> Bool
    /// High watermark minus committed offset per partition, read from the brokers.
    func brokerLag(for partitions: [TopicPartition], timeoutMs: Int32) async throws -> [TopicPartition: Int64]
    /// Leaves the group; `nextBatch()` then returns nil.
    func close() async
}

/// What the pipeline needs of its output: a producer whose completion runs when the
/// broker acknowledged (or finally refused) a record. `KafkaProducer` is the real one.
public protocol PipelineOutput: Sendable {
    func enqueue(_ record: KafkaOutgoingRecord, completion: @escaping KafkaProducer.Completion) async throws
    func flush(timeoutMs: Int32) async throws
    func close(timeoutMs: Int32) async
}

extension KafkaConsumer: PipelineInput {
    public func nextBatch() async -> [KafkaRecord]? {
        var batches = batches.makeAsyncIterator()
        return await batches.next()
    }

    public func coordinatorReachable(probing partition: TopicPartition, timeoutMs: Int32) async -> Bool {
        (try? await committedOffsets(for: [partition], timeoutMs: timeoutMs)) != nil
    }
}

extension KafkaProducer: PipelineOutput {}
