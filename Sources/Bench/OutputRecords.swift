import Kafka
import Logging
import NIOConcurrencyHelpers
import Poller

/// Reads the three output topics (solutions, failures, dead letters) from the start and
/// keeps every record by its key (the taskId): for the demo's and the hostile run's checks.
public final class OutputRecords: Sendable {
    public struct Output: Sendable {
        public var topic: String
        public var value: String
    }

    private let consumer: KafkaConsumer
    private let records = NIOLockedValueBox<(byKey: [String: [Output]], total: Int)>(([:], 0))
    private let task: Task<Void, Never>

    public init(bootstrapServers: String, topics: Pipeline.Topics, groupID: String, logger: Logger) throws {
        var config = KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: groupID)
        config.fetchWaitMaxMs = 10
        consumer = try KafkaConsumer(configuration: config, logger: logger)
        try consumer.subscribe(topics: [topics.solutions, topics.failures, topics.deadLetters])
        task = Task { [consumer, records] in
            for await batch in consumer.batches {
                records.withLockedValue { records in
                    for record in batch {
                        records.byKey[String(decoding: record.key ?? [], as: UTF8.self), default: []]
                            .append(Output(topic: record.topic, value: String(decoding: record.value ?? [], as: UTF8.self)))
                    }
                    records.total += batch.count
                }
            }
        }
    }

    /// Records read so far.
    public var count: Int { records.withLockedValue { $0.total } }

    public func contains(_ key: String) -> Bool { records.withLockedValue { $0.byKey[key] != nil } }

    /// Every record so far, by key, in the order read.
    public func snapshot() -> [String: [Output]] { records.withLockedValue { $0.byKey } }

    public func close() async {
        await consumer.close()
        await task.value
    }
}
