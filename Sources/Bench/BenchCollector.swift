import Foundation
import Kafka
import Logging
import Poller
import TaskAPI

/// Reads the output topics and hands each output, with the time it was seen,
/// to the task book. Output JSON is parsed for `polls` and `resolvedAt`.
final class BenchCollector: Sendable {
    private let consumer: KafkaConsumer
    private let book: BenchTaskBook
    private let task: Task<Void, Never>

    init(bootstrapServers: String, topics: Pipeline.Topics, book: BenchTaskBook, logger: Logger) throws {
        var config = KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: "ezpoll-bench-collector")
        config.fetchWaitMaxMs = 5
        consumer = try KafkaConsumer(configuration: config, logger: logger)
        self.book = book
        try consumer.subscribe(topics: [topics.solutions, topics.failures, topics.deadLetters])
        let solutionsTopic = topics.solutions
        task = Task { [consumer, book] in
            for await batch in consumer.batches {
                let received = ContinuousClock.now
                let wallMs = Double(Date().timeIntervalSince1970 * 1000)
                var items: [(taskId: String, observation: BenchTaskBook.Observation, solved: Bool)] = []
                items.reserveCapacity(batch.count)
                for record in batch {
                    let (polls, resolvedAtMs) = Self.fields(record.value ?? [])
                    let observation = BenchTaskBook.Observation(
                        received: received, topic: record.topic, detectionDelay: nil,
                        addedLatency: resolvedAtMs.map { max(0, wallMs - Double($0)) / 1000 }, polls: polls)
                    items.append((String(decoding: record.key ?? [], as: UTF8.self), observation, record.topic == solutionsTopic))
                }
                book.observe(items)
            }
        }
    }

    var isAssigned: Bool { !consumer.assignedPartitions.isEmpty }

    /// `polls` and `resolvedAt` (ms since the epoch) of an output message.
    static func fields(_ value: [UInt8]) -> (polls: Int?, resolvedAtMs: Int64?) {
        guard let members = try? JSONScanner.members(ofObject: value) else { return (nil, nil) }
        var polls: Int?
        var resolved: Int64?
        for member in members {
            switch member.key {
            case "polls":
                polls = Int(String(decoding: value[member.range], as: UTF8.self))
            case "resolvedAt", "failedAt":
                if resolved == nil, let text = try? JSONScanner.decodeString(value, member.range) {
                    resolved = Timestamp(rfc3339: text)?.millisecondsSinceEpoch
                }
            default:
                continue
            }
        }
        return (polls, resolved)
    }

    func close() async {
        await consumer.close()
        await task.value
    }
}
