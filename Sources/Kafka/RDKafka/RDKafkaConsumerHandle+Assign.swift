import CRdKafka

/// The calls of a consumer that reads partitions it names itself (`KafkaTopicReader`),
/// outside any group: no subscription, no rebalance, no commit.
extension RDKafkaConsumerHandle {
    /// Fetches exactly these partitions, each from its offset; an empty list stops fetching.
    func assign(_ offsets: [TopicPartitionOffset]) throws {
        let err = offsets.isEmpty
            ? rd_kafka_assign(rk, nil)
            : RDKafkaTopicPartitionList.with(offsets.map { ($0.topicPartition, $0.offset) }) { rd_kafka_assign(rk, $0) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(.consumer, "assign \(offsets)", err: err)
        }
    }
}
