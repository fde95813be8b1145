/// One record from the tasks topic, as the engine needs it.
public struct InputRecord: Hashable, Sendable {
    /// Topic, partition, offset and record timestamp.
    public var source: MessageSource
    public var key: [UInt8]?
    public var value: [UInt8]?

    public init(source: MessageSource, key: [UInt8]?, value: [UInt8]?) {
        self.source = source
        self.key = key
        self.value = value
    }

    public var partition: PartitionID { PartitionID(topic: source.topic, partition: source.partition) }
}
