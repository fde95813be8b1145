/// A topic partition, the unit of offset tracking. The Kafka layer has its own
/// type; the pipeline maps between the two at the edge.
public struct PartitionID: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}
