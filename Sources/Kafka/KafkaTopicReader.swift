import Logging

/// Reads the partitions of one topic once, from the oldest record each partition keeps
/// to the end it had when the read began (its high watermark then), outside any consumer group: no
/// subscription, no rebalance, nothing committed. Records written after the read began
/// are left out, so a read always ends. For tools that scan a topic, such as `ezpoll replay`;
/// `tail` reads what comes from now on instead (the callback relay).
public final class KafkaTopicReader: Sendable {
    /// The offsets one read covered in a partition: `start..<end`.
    public typealias Ranges = [TopicPartition: Range<Int64>]

    let client: RDKafkaClient
    private let logger: Logger

    /// `properties` are librdkafka consumer properties (security settings and the like);
    /// those that make this reader what it is win over them.
    public init(bootstrapServers: String, properties: [String: String] = [:], logger: Logger) throws {
        self.logger = logger
        var all = properties
        for (key, value) in [("bootstrap.servers", bootstrapServers), ("client.id", "ezpoll-reader")] where all[key] == nil {
            all[key] = value
        }
        // librdkafka's consumer poll needs a group id; with assign() and no commit no group is joined or written.
        all["group.id"] = all["group.id"] ?? "ezpoll-reader"
        all["enable.auto.commit"] = "false"
        all["enable.auto.offset.store"] = "false"
        all["enable.partition.eof"] = "true"
        let context = RDKafkaCallbackContext(logger: logger, eventHandler: nil)
        client = try RDKafkaClient(kind: .consumer, properties: all.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                   context: context)
    }

    /// Reads `topic` (only `partitions` when given) and hands `body` each
    /// batch, in offset order within a partition. Blocks: call it off the cooperative pool.
    /// Throws when the topic is unknown, a broker call fails, or nothing arrives for
    /// `stallTimeout` while records are still due (a broker out of reach).
    /// Returns the offsets read in each partition.
    public func read(topic: String, partitions: Set<Int32>? = nil, timeoutMs: Int32 = 10_000,
                     stallTimeout: Duration = .seconds(30), _ body: ([KafkaRecord]) throws -> Void) throws -> Ranges {
        guard let count = client.partitionCount(of: topic, timeoutMs: timeoutMs) else {
            throw KafkaError(.consumer, "topic '\(topic)' is unknown, or the brokers did not answer within \(timeoutMs) ms")
        }
        let chosen = (0..<Int32(count)).filter { partitions?.contains($0) ?? true }.map { TopicPartition(topic, $0) }
        var ranges: Ranges = [:]
        for partition in chosen {
            let marks = try client.consumer.watermarks(partition, timeoutMs: timeoutMs)
            ranges[partition] = marks.low..<max(marks.low, marks.high)
        }
        var open = Set(ranges.filter { !$0.value.isEmpty }.keys)
        guard !open.isEmpty else { return ranges }
        try client.consumer.assign(open.sorted().map { TopicPartitionOffset($0, offset: ranges[$0]!.lowerBound) })
        defer { try? client.consumer.assign([]) }
        let poller = RDKafkaRecordPoller(client: client, maxBatch: 1_000)
        var lastProgress = ContinuousClock.now
        while !open.isEmpty {
            var ends: [TopicPartitionOffset] = []
            guard var records = poller.poll(timeoutMs: 100, partitionEnds: &ends), !(records.isEmpty && ends.isEmpty) else {
                if ContinuousClock.now - lastProgress > stallTimeout {
                    throw KafkaError(.consumer, "nothing read from \(open.sorted()) for \(stallTimeout)")
                }
                continue
            }
            lastProgress = .now
            records.removeAll { record in ranges[record.topicPartition].map { !$0.contains(record.offset) } ?? true }
            for record in records where record.offset + 1 >= ranges[record.topicPartition]!.upperBound {
                open.remove(record.topicPartition)
            }
            for end in ends where end.offset >= ranges[end.topicPartition]?.upperBound ?? 0 {
                open.remove(end.topicPartition)
            }
            if !records.isEmpty { try body(records) }
        }
        return ranges
    }

    /// Reads what is written to `topic` from now on (each partition from its end at the
    /// call; partitions added later are not read) and hands `body` each batch, until
    /// `isStopped()` says so (asked at least every 100 ms). Blocks: call it off the
    /// cooperative pool. Throws when the topic is unknown or a broker call fails at the start.
    public func tail(topic: String, timeoutMs: Int32 = 10_000, isStopped: () -> Bool, _ body: ([KafkaRecord]) -> Void) throws {
        guard let count = client.partitionCount(of: topic, timeoutMs: timeoutMs) else {
            throw KafkaError(.consumer, "topic '\(topic)' is unknown, or the brokers did not answer within \(timeoutMs) ms")
        }
        var starts: [TopicPartitionOffset] = []
        for partition in (0..<Int32(count)).map({ TopicPartition(topic, $0) }) {
            starts.append(TopicPartitionOffset(partition, offset: try client.consumer.watermarks(partition, timeoutMs: timeoutMs).high))
        }
        try client.consumer.assign(starts)
        defer { try? client.consumer.assign([]) }
        let poller = RDKafkaRecordPoller(client: client, maxBatch: 1_000)
        while !isStopped() {
            var ends: [TopicPartitionOffset] = []
            if let records = poller.poll(timeoutMs: 100, partitionEnds: &ends), !records.isEmpty { body(records) }
        }
    }

    /// Leaves librdkafka's consumer. Call once, when done reading.
    public func close() {
        if let failure = client.consumer.close() { logger.warning("topic reader close: \(failure)") }
    }
}
