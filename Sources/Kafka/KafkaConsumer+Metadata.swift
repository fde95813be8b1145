extension KafkaConsumer {
    /// How many partitions `topic` has (a metadata request; blocks at most `timeoutMs`).
    /// Nil when the cluster did not answer in time or does not know the topic.
    public func partitionCount(of topic: String, timeoutMs: Int32 = 2_000) -> Int? {
        client.partitionCount(of: topic, timeoutMs: timeoutMs)
    }
}
