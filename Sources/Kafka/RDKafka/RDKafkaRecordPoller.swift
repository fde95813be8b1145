import CRdKafka

/// Reads a consumer's records in batches: blocks for the first message (or an event
/// such as a rebalance, served through the callbacks), then takes whatever else is
/// already queued without waiting. Each message is copied into a `KafkaRecord` and
/// destroyed; message errors other than end-of-partition go to the client's error
/// callback, and partition ends (with `enable.partition.eof`) to the caller that asks
/// for them. Used by one polling thread only.
///
/// Every message comes from `rd_kafka_consumer_poll`, never `rd_kafka_consume_batch_queue`:
/// in librdkafka before 2.1.0 (Debian 12 ships 2.0.2) the batch call can skip offsets of
/// a partition paused or resumed meanwhile (librdkafka #4208), and the in-flight bound
/// pauses and resumes from other threads. A skipped record would be committed past:
/// lost.
final class RDKafkaRecordPoller {
    private let client: RDKafkaClient
    private let maxBatch: Int

    init(client: RDKafkaClient, maxBatch: Int) {
        self.client = client
        self.maxBatch = max(1, maxBatch)
    }

    /// The next batch (at most `maxBatch` messages); nil when nothing arrived within
    /// `timeoutMs`, empty when only errors or partition ends did.
    func poll(timeoutMs: Int32) -> [KafkaRecord]? {
        var ends: [TopicPartitionOffset] = []
        return poll(timeoutMs: timeoutMs, partitionEnds: &ends)
    }

    /// Like `poll(timeoutMs:)`, adding to `partitionEnds` each partition end reached,
    /// with the offset it is at.
    func poll(timeoutMs: Int32, partitionEnds: inout [TopicPartitionOffset]) -> [KafkaRecord]? {
        guard let first = rd_kafka_consumer_poll(client.handle, timeoutMs) else { return nil }
        var records: [KafkaRecord] = []
        records.reserveCapacity(min(maxBatch, 256))
        collect(first, into: &records, ends: &partitionEnds)
        var taken = 1
        while taken < maxBatch, let message = rd_kafka_consumer_poll(client.handle, 0) {
            collect(message, into: &records, ends: &partitionEnds)
            taken += 1
        }
        return records
    }

    /// Converts one message to a record (or reports its error, or notes a partition end) and destroys it.
    private func collect(_ message: UnsafeMutablePointer<rd_kafka_message_t>, into records: inout [KafkaRecord],
                         ends: inout [TopicPartitionOffset]) {
        defer { rd_kafka_message_destroy(message) }
        let m = message.pointee
        guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                if let rkt = m.rkt {
                    ends.append(TopicPartitionOffset(TopicPartition(String(cString: rd_kafka_topic_name(rkt)), m.partition), offset: m.offset))
                }
            } else {
                let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
                client.context.error(client: nil, err: m.err, reason: "consume \(topic)[\(m.partition)]: \(rdKafkaErrorText(m.err))")
            }
            return
        }
        let topic = String(cString: rd_kafka_topic_name(m.rkt))
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        records.append(KafkaRecord(topic: topic, partition: m.partition, offset: m.offset,
                                   key: key, value: value, headers: Self.headers(of: message),
                                   timestampMs: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp))
    }

    private static func headers(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return [] }
        var result: [KafkaHeader] = []
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(hdrs, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            let headerName = name.map { String(cString: $0) } ?? ""
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
            result.append(KafkaHeader(name: headerName, value: bytes))
            index += 1
        }
        return result
    }
}
