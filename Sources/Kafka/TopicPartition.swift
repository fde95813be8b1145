/// A partition of a topic.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible, Comparable {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        a.topic == b.topic ? a.partition < b.partition : a.topic < b.topic
    }
}

/// A partition and an offset. For stored/committed offsets the offset is the
/// *next* offset to read, as Kafka defines it.
public struct TopicPartitionOffset: Hashable, Sendable, CustomStringConvertible {
    public var topicPartition: TopicPartition
    public var offset: Int64
    /// The commit's metadata string (Kafka keeps it beside the committed offset);
    /// nil: none.
    public var metadata: String?

    public init(_ topicPartition: TopicPartition, offset: Int64, metadata: String? = nil) {
        self.topicPartition = topicPartition
        self.offset = offset
        self.metadata = metadata
    }

    public var description: String { "\(topicPartition)@\(offset)" }
}
