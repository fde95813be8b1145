import CRdKafka

/// The producer calls on a client handle.
extension RDKafkaClient {
    /// Queues a record (key, value and headers are copied); `opaque` comes back with its
    /// delivery report. Returns nil once queued, else why not (see `isQueueFull`).
    func produce(_ record: KafkaOutgoingRecord, opaque: UnsafeMutableRawPointer) -> KafkaError? {
        var headers: OpaquePointer?
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                if let value = header.value {
                    value.withUnsafeBytes { _ = rd_kafka_header_add(headers, header.name, -1, $0.baseAddress, $0.count) }
                } else {
                    _ = rd_kafka_header_add(headers, header.name, -1, nil, 0)
                }
            }
        }
        let err = Self.withOptionalBytes(record.key) { key in
            Self.withOptionalBytes(record.value) { value in
                ezpoll_produce(handle, record.topic, record.partition ?? RD_KAFKA_PARTITION_UA,
                               key.baseAddress, key.count, value.baseAddress, value.count, headers, opaque)
            }
        }
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        if let headers { rd_kafka_headers_destroy(headers) }
        return KafkaError(.delivery, "produce to \(record.topic)", err: err)
    }

    /// A null buffer for nil (a null key or value); an empty array stays non-null.
    private static func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard let bytes else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return withUnsafeBytes(of: &zero) { body(UnsafeRawBufferPointer(start: $0.baseAddress, count: 0)) }
        }
        return bytes.withUnsafeBytes(body)
    }

    /// The outcome a delivery report carries.
    static func deliveryResult(_ m: rd_kafka_message_t) -> Result<KafkaDeliveryReport, KafkaError> {
        let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            return .success(KafkaDeliveryReport(topic: topic, partition: m.partition, offset: m.offset))
        }
        return .failure(KafkaError(.delivery, "deliver to \(topic)[\(m.partition)]", err: m.err))
    }

    /// Records queued or in flight in librdkafka.
    var outstanding: Int { Int(rd_kafka_outq_len(handle)) }

    /// Blocks until every queued record has a delivery result, at most `timeoutMs`.
    func flush(timeoutMs: Int32) throws {
        let err = rd_kafka_flush(handle, timeoutMs)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(.delivery, "flush (\(outstanding) records left)", err: err)
        }
    }

    /// Fails every queued and in-flight record (each gets its delivery report), then
    /// blocks at most 5 s for those reports.
    func purgeAndFlush() {
        rd_kafka_purge(handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
        _ = rd_kafka_flush(handle, 5_000)
    }

    /// Serves delivery reports and events, waiting at most `timeoutMs` for one.
    func poll(timeoutMs: Int32) {
        rd_kafka_poll(handle, timeoutMs)
    }
}
