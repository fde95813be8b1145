import Kafka
import Logging

/// librdkafka's mock cluster: a real Kafka-protocol broker set inside this process,
/// listening on random loopback ports, with fault injection. For the demo, tests and
/// `ezpoll broker`; production uses a real cluster.
///
/// Facts (librdkafka 2.0.2): no CreateTopics (use `createTopic`), replication factor
/// ignored, each partition keeps only ~5 MiB / 100,000 batches.
public final class EmbeddedKafkaCluster: Sendable {
    /// Kafka request types, for pushing errors on a request type.
    public struct APIKey: RawRepresentable, Hashable, Sendable {
        public let rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }
        public static let produce = APIKey(rawValue: 0)
        public static let fetch = APIKey(rawValue: 1)
        public static let listOffsets = APIKey(rawValue: 2)
        public static let metadata = APIKey(rawValue: 3)
        public static let offsetCommit = APIKey(rawValue: 8)
        public static let offsetFetch = APIKey(rawValue: 9)
        public static let findCoordinator = APIKey(rawValue: 10)
        public static let joinGroup = APIKey(rawValue: 11)
        public static let heartbeat = APIKey(rawValue: 12)
        public static let leaveGroup = APIKey(rawValue: 13)
        public static let syncGroup = APIKey(rawValue: 14)
        public static let initProducerID = APIKey(rawValue: 22)
    }

    /// Kafka protocol error codes worth injecting.
    public struct ErrorCode: RawRepresentable, Hashable, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let notLeaderForPartition = ErrorCode(rawValue: 6)
        public static let requestTimedOut = ErrorCode(rawValue: 7)
        public static let messageTooLarge = ErrorCode(rawValue: 10)
        public static let coordinatorNotAvailable = ErrorCode(rawValue: 15)
        public static let notCoordinator = ErrorCode(rawValue: 16)
        public static let notEnoughReplicas = ErrorCode(rawValue: 19)
        public static let topicAuthorizationFailed = ErrorCode(rawValue: 29)
        public static let rebalanceInProgress = ErrorCode(rawValue: 27)
    }

    public let brokerCount: Int
    /// The bootstrap servers string of the cluster (loopback host:port list).
    public var bootstrapServers: String { mock.bootstrapServers }
    private let mock: RDKafkaMockCluster

    /// Starts a cluster of `brokers` brokers. `logger` receives librdkafka's log lines;
    /// `debug` lists librdkafka debug contexts to log (`mock` shows the brokers' own
    /// decisions, such as a member leaving a group).
    public init(brokers: Int = 1, logger: Logger = Logger(label: "ezpoll.kafka.embedded"), debug: [String] = []) throws {
        precondition(brokers >= 1, "a cluster needs at least one broker")
        mock = try RDKafkaMockCluster(brokers: Int32(brokers), logger: logger, debug: debug)
        brokerCount = brokers
    }

    /// Creates a topic with `partitions` partitions.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws {
        try mock.createTopic(name, partitions: Int32(partitions), replicationFactor: Int32(replicationFactor))
    }

    /// Takes a broker (1-based id) down: its connections close and it refuses new ones.
    public func setBrokerDown(_ brokerID: Int32) throws {
        try mock.setBrokerDown(brokerID)
    }

    /// Brings a broker back up.
    public func setBrokerUp(_ brokerID: Int32) throws {
        try mock.setBrokerUp(brokerID)
    }

    /// Adds `milliseconds` of latency to every response of a broker.
    public func setBrokerLatency(_ brokerID: Int32, milliseconds: Int) throws {
        try mock.setBrokerRoundTripTime(brokerID, milliseconds: Int32(milliseconds))
    }

    /// The next requests of type `apiKey` (cluster-wide) fail with `errors`, one each, in order.
    public func pushRequestErrors(_ apiKey: APIKey, _ errors: [ErrorCode]) throws {
        try mock.pushRequestErrors(apiKey.rawValue, errors.map(\.rawValue))
    }

    /// The next `count` responses of broker `brokerID` to requests of type `apiKey`
    /// are held back `milliseconds` each (they succeed, late).
    public func delayResponses(_ apiKey: APIKey, broker brokerID: Int32, count: Int = 1, milliseconds: Int) throws {
        for _ in 0..<count {
            try mock.delayResponse(apiKey.rawValue, broker: brokerID, milliseconds: Int32(milliseconds))
        }
    }

    /// Forgets errors pushed for `apiKey` that have not fired yet.
    public func clearRequestErrors(_ apiKey: APIKey) throws {
        try mock.clearRequestErrors(apiKey.rawValue)
    }

    /// Stops the brokers. Clients still connected see the brokers go away.
    public func stop() {
        mock.stop()
    }
}
