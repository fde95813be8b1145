import CRdKafka

extension RDKafkaClient {
    /// How many partitions `topic` has, from a metadata request to the cluster (blocks at
    /// most `timeoutMs`); nil when the broker did not answer or does not know the topic.
    func partitionCount(of topic: String, timeoutMs: Int32) -> Int? {
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else { return nil }
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        guard rd_kafka_metadata(handle, 0, topicHandle, &metadata, timeoutMs) == RD_KAFKA_RESP_ERR_NO_ERROR,
              let metadata else { return nil }
        defer { rd_kafka_metadata_destroy(metadata) }
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            let entry = metadata.pointee.topics[index]
            guard String(cString: entry.topic) == topic, entry.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            return entry.partition_cnt > 0 ? Int(entry.partition_cnt) : nil
        }
        return nil
    }
}
