import ArgumentParser
import Foundation
import Kafka
import Logging

/// `ezpoll demo`: the README's main job. Until the pipeline lands it shows the
/// embedded Kafka cluster working: produce task events, consume them in a group,
/// store and commit offsets, and check that every event came back exactly once.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run ezpoll end to end on an embedded Kafka cluster (nothing to install)."
    )

    @Option(name: .long, help: "Number of task events.")
    var tasks: Int = 2_000

    @Option(name: .long, help: "Partitions of the input topic.")
    var partitions: Int = 4

    func validate() throws {
        guard tasks >= 1 else { throw ValidationError("--tasks must be at least 1") }
        guard partitions >= 1 else { throw ValidationError("--partitions must be at least 1") }
    }

    func run() async throws {
        var logger = Logger(label: "ezpoll.demo")
        logger.logLevel = .warning
        let started = ContinuousClock.now
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: logger)
        defer { cluster.stop() }
        try cluster.createTopic("captcha.tasks", partitions: partitions)
        print("embedded Kafka cluster at \(cluster.bootstrapServers)")

        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger)
        let failures = Counter()
        for i in 0..<tasks {
            let taskId = UUID().uuidString.lowercased()
            let event = #"{"taskId":"\#(taskId)","correlationId":"demo-\#(i)"}"#
            try await producer.enqueue(KafkaOutgoingRecord(topic: "captcha.tasks", key: Array(taskId.utf8), value: Array(event.utf8))) {
                if case .failure = $0 { failures.add() }
            }
        }
        try await producer.flush()
        await producer.close()
        print("produced \(tasks) task events (\(failures.value) failed)")

        var config = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: "ezpoll-demo")
        config.fetchWaitMaxMs = 10
        let consumer = try KafkaConsumer(configuration: config, logger: logger)
        try consumer.subscribe(topics: ["captcha.tasks"])
        var seen = 0
        var next: [TopicPartition: Int64] = [:]
        for await batch in consumer.batches {
            seen += batch.count
            for record in batch { next[record.topicPartition] = record.offset + 1 }
            try consumer.storeOffsets(next.map { TopicPartitionOffset($0.key, offset: $0.value) })
            if seen >= tasks { break }
        }
        try await consumer.commit()
        await consumer.close()
        let elapsed = ContinuousClock.now - started
        print("consumed \(seen) events in group 'ezpoll-demo' over \(next.count) partitions, offsets committed, in \(elapsed)")
        guard seen == tasks, failures.value == 0 else {
            throw ValidationError("expected \(tasks) events back, got \(seen)")
        }
        print("ok: every event came back exactly once")
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
