import Kafka

/// A record of the topic being replayed (dead letters or failures), by topic, partition
/// and offset. It names a replay: every copy carries it in its `ezpoll-replay-*` headers,
/// and `ezpoll replay` copies a record at a position once unless forced (`ReplayPlan`).
/// Its commit metadata is always nil.
public typealias ReplayPosition = TopicPartitionOffset

extension ReplayPosition {
    public init(of record: KafkaRecord) {
        self.init(record.topicPartition, offset: record.offset)
    }

    /// The record a copy was made of, read from the copy's headers; nil for a record that
    /// is not a replay copy (or whose replay headers are damaged).
    public init?(copyHeaders headers: [KafkaHeader]) {
        func text(_ name: String) -> String? {
            headers.last { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
        }
        guard let topic = text(ReplayHeader.topic), !topic.isEmpty,
              let partition = text(ReplayHeader.partition).flatMap({ Int32($0) }),
              let offset = text(ReplayHeader.offset).flatMap({ Int64($0) }) else { return nil }
        self.init(TopicPartition(topic, partition), offset: offset)
    }
}

/// The headers `ezpoll replay` adds to a copy (the copied record's own headers are kept).
public enum ReplayHeader {
    /// What every replay header's name starts with; a copy's headers of this prefix are
    /// replaced, so a copy of a copy names only the record it was made of.
    public static let prefix = "ezpoll-replay-"
    /// Topic, partition and offset of the record copied (a dead letter or a failure).
    public static let topic = prefix + "topic"
    public static let partition = prefix + "partition"
    public static let offset = prefix + "offset"
    /// The copied record's reason code (`unknown_provider`, `transient_errors`, ...).
    public static let reason = prefix + "reason"

    /// The headers a copy of the record at `position` gets.
    static func headers(for position: ReplayPosition, reason: String) -> [KafkaHeader] {
        [KafkaHeader(name: topic, string: position.topicPartition.topic),
         KafkaHeader(name: partition, string: String(position.topicPartition.partition)),
         KafkaHeader(name: offset, string: String(position.offset)), KafkaHeader(name: Self.reason, string: reason)]
    }
}
