/// Something librdkafka reported about the client as a whole (not about one record).
public enum KafkaClientEvent: Sendable {
    /// An error librdkafka reported through its error callback; it usually recovers.
    case error(KafkaError)
    /// No broker is reachable right now.
    case allBrokersDown(KafkaError)
    /// A fatal error: this client instance cannot go on and must be recreated.
    case fatal(KafkaError)
}

public typealias KafkaClientEventHandler = @Sendable (KafkaClientEvent) -> Void
