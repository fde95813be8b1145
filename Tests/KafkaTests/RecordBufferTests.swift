@testable import Kafka
import Testing

@Suite("RecordBuffer bounds")
struct RecordBufferTests {
    func record(valueBytes: Int, partition: Int32 = 0) -> KafkaRecord {
        KafkaRecord(topic: "t", partition: partition, offset: 0, key: [1, 2], value: [UInt8](repeating: 0, count: valueBytes),
                    headers: [KafkaHeader(name: "h", value: [3])], timestampMs: nil)
    }

    @Test("full by batch count or by bytes; one oversized batch is always let in")
    func bounds() async {
        let buffer = RecordBuffer(capacity: 3, maxBytes: 1_000)
        #expect(!buffer.isFull)
        buffer.push([record(valueBytes: 5_000)]) // larger than the byte bound on its own
        #expect(buffer.isFull)
        #expect(RecordBuffer.size(of: [record(valueBytes: 10)]) == 2 + 10 + 1 + 1)
        let first = await buffer.next()
        #expect(first?.first?.value?.count == 5_000)
        #expect(!buffer.isFull, "taking the batch frees its bytes")

        buffer.push([record(valueBytes: 100)])
        buffer.push([record(valueBytes: 100)])
        #expect(!buffer.isFull)
        buffer.push([record(valueBytes: 100)])
        #expect(buffer.isFull, "three batches: full by count")
        _ = await buffer.next()
        #expect(!buffer.isFull)
        buffer.push([record(valueBytes: 900)])
        #expect(buffer.isFull, "full by bytes")
    }

    @Test("dropping a revoked partition's records frees their bytes")
    func removeRecords() async {
        let buffer = RecordBuffer(capacity: 10, maxBytes: 1_000)
        buffer.push([record(valueBytes: 600, partition: 0), record(valueBytes: 100, partition: 1)])
        buffer.push([record(valueBytes: 600, partition: 0)])
        #expect(buffer.isFull)
        buffer.removeRecords(of: [TopicPartition("t", 0)])
        #expect(!buffer.isFull)
        let batch = await buffer.next()
        #expect(batch?.map(\.partition) == [1])
    }
}
