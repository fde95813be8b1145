import TaskModel
/// Where an input record came from; echoed in every output as `source`.
public struct MessageSource: Hashable, Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// The Kafka record timestamp, when the record had one.
    public var timestamp: Timestamp?

    public init(topic: String, partition: Int32, offset: Int64, timestamp: Timestamp? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
    }

    func write(into writer: inout JSONWriter) {
        writer.beginObject("source")
        writer.string("topic", topic)
        writer.integer("partition", partition)
        writer.integer("offset", offset)
        if let timestamp { writer.timestamp("timestamp", timestamp) }
        writer.endObject()
    }
}
