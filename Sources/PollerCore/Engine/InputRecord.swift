/// One record from the tasks topic, as the engine needs it.
public struct InputRecord: Hashable, Sendable {
    /// Topic, partition, offset and record timestamp.
    public var source: MessageSource
    public var key: [UInt8]?
    public var value: [UInt8]?
    /// The W3C trace context of its headers, if any.
    public var trace: TraceContext?

    public init(source: MessageSource, key: [UInt8]?, value: [UInt8]?, trace: TraceContext? = nil) {
        self.source = source
        self.key = key
        self.value = value
        self.trace = trace
    }

    public var partition: PartitionID { PartitionID(topic: source.topic, partition: source.partition) }
}
