import Foundation
import EmbeddedKafka
import Kafka
import Testing
import TestSupport

@Suite("Kafka over the embedded cluster", .serialized)
struct KafkaRoundTripTests {
    @Test("20,000 records with keys and headers arrive once each, in order per partition")
    func roundTrip() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 3, logger: testLogger)
        defer { cluster.stop() }
        try cluster.createTopic("rt", partitions: 4)
        let producer = try KafkaProducer(configuration: producerConfig(cluster), logger: testLogger)

        let total = 20_000
        let delivered = Locked<[Int: KafkaDeliveryReport]>([:])
        let failures = Locked<[KafkaError]>([])
        for i in 0..<total {
            let record = KafkaOutgoingRecord(topic: "rt", key: Array("key-\(i)".utf8), value: Array("value-\(i)".utf8),
                                             headers: [KafkaHeader(name: "index", string: String(i)),
                                                       KafkaHeader(name: "empty", value: nil)])
            try await producer.enqueue(record) { result in
                switch result {
                case .success(let report): delivered.withLock { $0[i] = report }
                case .failure(let error): failures.withLock { $0.append(error) }
                }
            }
        }
        try await producer.flush()
        #expect(failures.current.isEmpty)
        #expect(delivered.current.count == total)

        let consumer = try KafkaConsumer(configuration: consumerConfig(cluster, group: "rt-group"), logger: testLogger)
        try consumer.subscribe(topics: ["rt"])
        let collector = Collector(consumer)
        try await waitUntil("all records consumed") { collector.count >= total }
        await consumer.close()
        await collector.finish()
        await producer.close()

        let records = collector.records.current
        #expect(records.count == total, "no record twice")
        var lastOffset: [Int32: Int64] = [:]
        var seen = Set<Int>()
        for record in records {
            let key = String(decoding: record.key ?? [], as: UTF8.self)
            let index = Int(key.dropFirst("key-".count))!
            #expect(seen.insert(index).inserted)
            let report = delivered.current[index]!
            #expect(report.partition == record.partition && report.offset == record.offset)
            #expect(record.value == Array("value-\(index)".utf8))
            #expect(record.headers == [KafkaHeader(name: "index", string: String(index)), KafkaHeader(name: "empty", value: nil)])
            #expect(record.timestampMs != nil)
            if let last = lastOffset[record.partition] { #expect(record.offset > last, "in order per partition") }
            lastOffset[record.partition] = record.offset
        }
        #expect(Set(records.map(\.partition)).count == 4, "the keyed partitioner spread the records")
    }

    @Test("null keys and null values pass through without a crash")
    func nullKeyAndValue() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        defer { cluster.stop() }
        try cluster.createTopic("nulls", partitions: 1)
        let producer = try KafkaProducer(configuration: producerConfig(cluster), logger: testLogger)
        _ = try await producer.send(KafkaOutgoingRecord(topic: "nulls", key: nil, value: nil))
        _ = try await producer.send(KafkaOutgoingRecord(topic: "nulls", key: nil, value: Array("v".utf8)))
        _ = try await producer.send(KafkaOutgoingRecord(topic: "nulls", key: Array("k".utf8), value: nil))
        _ = try await producer.send(KafkaOutgoingRecord(topic: "nulls", key: [], value: []))
        await producer.close()

        let consumer = try KafkaConsumer(configuration: consumerConfig(cluster, group: "nulls"), logger: testLogger)
        try consumer.subscribe(topics: ["nulls"])
        let collector = Collector(consumer)
        try await waitUntil("4 records") { collector.count >= 4 }
        await consumer.close()
        await collector.finish()
        let records = collector.records.current
        #expect(records.map(\.key) == [nil, nil, Array("k".utf8), []])
        #expect(records.map(\.value) == [nil, Array("v".utf8), nil, []])
    }

    @Test("a produce the broker keeps rejecting returns an error to the awaiting caller")
    func produceFailure() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        defer { cluster.stop() }
        try cluster.createTopic("fail", partitions: 1)
        var config = producerConfig(cluster)
        config.messageTimeoutMs = 3_000
        let producer = try KafkaProducer(configuration: config, logger: testLogger)
        // Warm up so the idempotent producer has its id and the leader is known.
        _ = try await producer.send(KafkaOutgoingRecord(topic: "fail", key: nil, value: Array("ok".utf8)))
        try cluster.pushRequestErrors(.produce, Array(repeating: .notEnoughReplicas, count: 1_000))
        await #expect(throws: KafkaError.self) {
            _ = try await producer.send(KafkaOutgoingRecord(topic: "fail", key: nil, value: Array("doomed".utf8)))
        }
        try cluster.clearRequestErrors(.produce)
        await producer.close(timeoutMs: 5_000)
    }

    @Test("closing a producer twice, at once or one after the other, returns every time")
    func doubleClose() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        defer { cluster.stop() }
        try cluster.createTopic("close", partitions: 1)
        // Two closes racing used to leave the first waiting forever: the second
        // replaced its wake-up while the delivery thread was still polling.
        for round in 0..<10 {
            let producer = try KafkaProducer(configuration: producerConfig(cluster), logger: testLogger)
            if round == 0 { _ = try await producer.send(KafkaOutgoingRecord(topic: "close", key: nil, value: Array("x".utf8))) }
            let closed = Locked(0)
            // Unstructured, so a close that never returns fails the wait instead of hanging the suite.
            for _ in 0..<3 { Task { await producer.close(); closed.withLock { $0 += 1 } } }
            try await waitUntil("round \(round): all three closes returned", timeout: 60) { closed.current == 3 }
            await producer.close() // after it is closed: returns at once
        }
    }

    @Test("a bad configuration key fails with an error that names it")
    func badConfigKey() throws {
        var config = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:1")
        config.properties["no.such.property"] = "1"
        let error = #expect(throws: KafkaError.self) { _ = try KafkaProducer(configuration: config, logger: testLogger) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("no.such.property") == true)

        var consumer = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:1", groupID: "g")
        consumer.properties["session.timeout.ms"] = "not-a-number"
        let error2 = #expect(throws: KafkaError.self) { _ = try KafkaConsumer(configuration: consumer, logger: testLogger) }
        #expect(error2?.message.contains("session.timeout.ms") == true)

        #expect(throws: KafkaError.self) { _ = try KafkaProperty.parse("novalue") }
        let parsed = try KafkaProperty.parse("a.b=c=d")
        #expect(parsed.key == "a.b" && parsed.value == "c=d")
    }

    @Test("all brokers down reaches the event handler as a typed event")
    func allBrokersDown() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        defer { cluster.stop() }
        try cluster.createTopic("down", partitions: 1)
        let events = Locked<[KafkaClientEvent]>([])
        let producer = try KafkaProducer(configuration: producerConfig(cluster), logger: testLogger) { event in
            events.withLock { $0.append(event) }
        }
        _ = try await producer.send(KafkaOutgoingRecord(topic: "down", key: nil, value: Array("up".utf8)))
        try cluster.setBrokerDown(1)
        try await waitUntil("allBrokersDown event") {
            events.current.contains { if case .allBrokersDown = $0 { return true } else { return false } }
        }
        try cluster.setBrokerUp(1)
        _ = try await producer.send(KafkaOutgoingRecord(topic: "down", key: nil, value: Array("up again".utf8)))
        await producer.close()
    }

    /// With errors pushed for Produce, the idempotent producer retries. When a later
    /// batch succeeds while an earlier one is being retried, librdkafka acknowledges the
    /// earlier messages *implicitly* (offset unknown, -1001): a real broker checks
    /// producer sequence numbers and would have refused the later batch out of order.
    /// librdkafka 2.0.2's mock broker checks sequences only for transactional producers
    /// (`rd_kafka_mock_validate_records`), so under load about one run in twenty an
    /// implicitly acknowledged record is not in its log. What the producer reports with
    /// an offset must be in the log at that offset; implicit acks are counted and shown.
    @Test("records acknowledged with an offset through retried produce errors are in the log at that offset")
    func ackedMeansStored() async throws {
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: testLogger)
        defer { cluster.stop() }
        try cluster.createTopic("acked", partitions: 2)
        let producer = try KafkaProducer(configuration: producerConfig(cluster), logger: testLogger)
        _ = try await producer.send(KafkaOutgoingRecord(topic: "acked", key: nil, value: Array("warm-up".utf8)))
        try cluster.pushRequestErrors(.produce, Array(repeating: .notLeaderForPartition, count: 20))
        let acked = Locked<[Int: KafkaDeliveryReport]>([:])
        for i in 0..<600 {
            try await producer.enqueue(KafkaOutgoingRecord(topic: "acked", key: Array("k\(i)".utf8), value: Array("\(i)".utf8))) {
                if case .success(let report) = $0 { acked.withLock { $0[i] = report } }
            }
            if i % 50 == 0 { try await Task.sleep(for: .milliseconds(5)) }
        }
        try await producer.flush()
        await producer.close()
        #expect(acked.current.count == 600)
        let explicit = acked.current.filter { $0.value.offset >= 0 }

        let consumer = try KafkaConsumer(configuration: consumerConfig(cluster, group: "acked-reader"), logger: testLogger)
        try consumer.subscribe(topics: ["acked"])
        let collector = Collector(consumer)
        try await waitUntil("every record acknowledged with an offset was read") {
            let read = Set(collector.records.current.map { TopicPartitionOffset(TopicPartition($0.topic, $0.partition), offset: $0.offset) })
            return explicit.values.allSatisfy { read.contains(TopicPartitionOffset(TopicPartition($0.topic, $0.partition), offset: $0.offset)) }
        }
        await consumer.close()
        await collector.finish()
        let byPosition = Dictionary(collector.records.current.map {
            (TopicPartitionOffset(TopicPartition($0.topic, $0.partition), offset: $0.offset), $0.value ?? [])
        }, uniquingKeysWith: { first, _ in first })
        for (i, report) in explicit {
            let stored = byPosition[TopicPartitionOffset(TopicPartition(report.topic, report.partition), offset: report.offset)]
            #expect(stored == Array("\(i)".utf8), "record \(i) at \(report.partition)/\(report.offset)")
        }
        let readValues = Set(byPosition.values)
        let implicit = acked.current.filter { $0.value.offset < 0 }.keys
        let implicitMissing = implicit.filter { !readValues.contains(Array("\($0)".utf8)) }
        print("acked: \(explicit.count) with an offset (all in the log), \(implicit.count) implicitly, of which \(implicitMissing.count) not in the mock's log")
    }
}
