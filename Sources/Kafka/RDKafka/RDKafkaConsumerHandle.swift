import CRdKafka
import Logging

/// The calls a group consumer makes on its `rd_kafka_t`. Borrowed: valid while the
/// `RDKafkaClient` that owns the handle lives (the consumer holds it, and the
/// rebalance callback only runs inside that client's poll).
struct RDKafkaConsumerHandle {
    let rk: OpaquePointer

    func subscribe(_ topics: [String]) throws {
        let err = RDKafkaTopicPartitionList.with(topics.map { (TopicPartition($0, RD_KAFKA_PARTITION_UA), 0) }) {
            rd_kafka_subscribe(rk, $0)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(.consumer, "subscribe to \(topics)", err: err)
        }
    }

    /// Stores offsets (each the next offset to read) for auto-commit. Fails for a
    /// partition that is not assigned to this member.
    func storeOffsets(_ offsets: [TopicPartitionOffset]) throws {
        try RDKafkaTopicPartitionList.with(offsets.map { ($0.topicPartition, $0.offset) }) { list in
            let err = rd_kafka_offsets_store(rk, list)
            let failed = RDKafkaTopicPartitionList.entries(list).filter { $0.err != RD_KAFKA_RESP_ERR_NO_ERROR }
            if let first = failed.first {
                throw KafkaError(.consumer, "store offset \(first.topicPartition)@\(first.offset)", err: first.err)
            }
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(.consumer, "store offsets", err: err)
            }
        }
    }

    /// Commits `offsets` with their metadata and blocks for the broker's answer.
    /// Returns the partitions whose commit failed.
    func commit(_ offsets: [TopicPartitionOffset]) -> [TopicPartition: KafkaError] {
        RDKafkaTopicPartitionList.with(offsets: offsets) { list in
            let err = rd_kafka_commit(rk, list, 0)
            var failed: [TopicPartition: KafkaError] = [:]
            for entry in RDKafkaTopicPartitionList.entries(list) where entry.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                failed[entry.topicPartition] = KafkaError(.consumer, "commit \(entry.topicPartition)@\(entry.offset)", err: entry.err)
            }
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                for entry in offsets where failed[entry.topicPartition] == nil {
                    failed[entry.topicPartition] = KafkaError(.consumer, "commit \(entry)", err: err)
                }
            }
            return failed
        }
    }

    /// Commits the stored offsets and blocks for the answer. Returns librdkafka's
    /// text for a failure; nil when committed or when nothing was stored.
    func commitStored() -> String? {
        rdKafkaFailureText(rd_kafka_commit(rk, nil, 0), ignoring: [RD_KAFKA_RESP_ERR__NO_OFFSET])
    }

    /// The group's committed offsets with their metadata; partitions with nothing
    /// committed are absent. Blocks for the broker's answer.
    func committed(_ partitions: [TopicPartition], timeoutMs: Int32) throws -> [TopicPartition: TopicPartitionOffset] {
        try RDKafkaTopicPartitionList.with(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) }) { list in
            let err = rd_kafka_committed(rk, list, timeoutMs)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(.consumer, "committed offsets", err: err)
            }
            let metadata = RDKafkaTopicPartitionList.metadata(list)
            var result: [TopicPartition: TopicPartitionOffset] = [:]
            for entry in RDKafkaTopicPartitionList.entries(list) {
                if entry.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError(.consumer, "committed offset of \(entry.topicPartition)", err: entry.err)
                }
                guard entry.offset >= 0 else { continue }
                result[entry.topicPartition] = TopicPartitionOffset(entry.topicPartition, offset: entry.offset,
                                                                    metadata: metadata[entry.topicPartition])
            }
            return result
        }
    }

    /// The low and high watermarks of `partition` as the partition leader states them now
    /// (a broker round trip, not the cached values of the last fetch).
    func watermarks(_ partition: TopicPartition, timeoutMs: Int32) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(rk, partition.topic, partition.partition, &low, &high, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(.consumer, "watermarks of \(partition)", err: err)
        }
        return (low, high)
    }

    /// Pauses or resumes fetching `partitions`; a failure is logged.
    func setPaused(_ partitions: [TopicPartition], paused: Bool, logger: Logger) {
        guard !partitions.isEmpty else { return }
        let err = RDKafkaTopicPartitionList.with(partitions.map { ($0, 0) }) { list in
            paused ? rd_kafka_pause_partitions(rk, list) : rd_kafka_resume_partitions(rk, list)
        }
        if let text = rdKafkaFailureText(err) {
            logger.warning("\(paused ? "pause" : "resume") \(partitions): \(text)")
        }
    }

    /// Whether the group gave this member an id (it had a JoinGroup answer).
    var hasMemberID: Bool {
        guard let id = rd_kafka_memberid(rk) else { return false }
        defer { rd_kafka_mem_free(rk, id) }
        return id.pointee != 0
    }

    /// Serves librdkafka (rebalances included) for at most `timeoutMs`; a record that
    /// arrives meanwhile is dropped unstored.
    func pollDiscardingRecords(timeoutMs: Int32) {
        if let message = rd_kafka_consumer_poll(rk, timeoutMs) { rd_kafka_message_destroy(message) }
    }

    /// Leaves the group, serving the final revoke through the rebalance callback.
    /// Returns librdkafka's text for a failure.
    func close() -> String? {
        rdKafkaFailureText(rd_kafka_consumer_close(rk))
    }
}
