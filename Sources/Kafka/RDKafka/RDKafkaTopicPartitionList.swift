import CRdKafka

/// Helpers to move between `rd_kafka_topic_partition_list_t` and Swift values.
enum RDKafkaTopicPartitionList {
    /// Calls `body` with a new list holding `entries`; the list is destroyed afterwards.
    static func with<R>(_ entries: [(TopicPartition, Int64)],
                        _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> R) rethrows -> R {
        let list = rd_kafka_topic_partition_list_new(Int32(max(entries.count, 1)))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (tp, offset) in entries {
            let element = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!
            element.pointee.offset = offset
        }
        return try body(list)
    }

    static func partitions(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
        entries(list).map(\.topicPartition)
    }

    /// Every element with its offset and per-partition error.
    static func entries(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>)
        -> [(topicPartition: TopicPartition, offset: Int64, err: rd_kafka_resp_err_t)] {
        let count = Int(list.pointee.cnt)
        guard count > 0, let elems = list.pointee.elems else { return [] }
        return (0..<count).map { i in
            let e = elems[i]
            return (TopicPartition(String(cString: e.topic), e.partition), e.offset, e.err)
        }
    }
}
