import Foundation
import EmbeddedKafka
import Kafka
import Logging
import Testing
import TestSupport

let testLogger: Logger = {
    var logger = Logger(label: "ezpoll.tests.kafka")
    logger.logLevel = ProcessInfo.processInfo.environment["EZPOLL_TEST_LOG"] != nil ? .debug : .error
    return logger
}()

func consumerConfig(_ cluster: EmbeddedKafkaCluster, group: String) -> KafkaConsumerConfiguration {
    var config = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: group)
    config.sessionTimeoutMs = 6_000
    config.heartbeatIntervalMs = 500
    config.fetchWaitMaxMs = 10
    config.autoCommitIntervalMs = 200
    return config
}

func producerConfig(_ cluster: EmbeddedKafkaCluster) -> KafkaProducerConfiguration {
    var config = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
    config.lingerMs = 5
    return config
}

/// Reads a consumer's batches into a list until the consumer closes.
final class Collector: @unchecked Sendable {
    let records = Locked<[KafkaRecord]>([])
    private var task: Task<Void, Never>?

    init(_ consumer: KafkaConsumer) {
        task = Task { [records] in
            for await batch in consumer.batches {
                records.withLock { $0.append(contentsOf: batch) }
            }
        }
    }

    var count: Int { records.withLock { $0.count } }

    func finish() async { await task?.value }
}

/// Produces `count` records with key "k<i>" and value "v<i>", round-robin over partitions.
func produce(_ producer: KafkaProducer, topic: String, count: Int, partitions: Int32, from start: Int = 0) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        let chunk = 500
        for base in stride(from: start, to: start + count, by: chunk) {
            group.addTask {
                for i in base..<min(base + chunk, start + count) {
                    _ = try await producer.send(KafkaOutgoingRecord(
                        topic: topic, partition: Int32(i) % partitions,
                        key: Array("k\(i)".utf8), value: Array("v\(i)".utf8),
                        headers: [KafkaHeader(name: "index", string: String(i))]))
                }
            }
        }
        try await group.waitForAll()
    }
}
