import CRdKafka
import Foundation
import Logging

/// librdkafka's mock cluster: a real Kafka-protocol broker set inside this process,
/// listening on random loopback ports, with fault injection. For the demo, tests and
/// `ezpoll broker`; production uses a real cluster.
///
/// Facts (librdkafka 2.0.2): no CreateTopics (use `createTopic`), replication factor
/// ignored, each partition keeps only ~5 MiB / 100,000 batches.
public final class EmbeddedKafkaCluster: @unchecked Sendable {
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
    public let bootstrapServers: String
    private let client: RDKafkaClient
    private let lock = NSLock()
    private var cluster: OpaquePointer?

    /// Starts a cluster of `brokers` brokers. `logger` receives librdkafka's log lines;
    /// `debug` lists librdkafka debug contexts to log (`mock` shows the brokers' own
    /// decisions, such as a member leaving a group).
    public init(brokers: Int = 1, logger: Logger = Logger(label: "ezpoll.kafka.embedded"), debug: [String] = []) throws {
        precondition(brokers >= 1, "a cluster needs at least one broker")
        let context = RDKafkaCallbackContext(logger: logger, eventHandler: nil)
        // The mock cluster lives inside a client handle that must outlive it. That handle
        // never connects anywhere, so its "no bootstrap.servers" notice is muted (log_level 4
        // unless debug lines are asked for).
        var properties = [("client.id", "ezpoll-embedded-cluster"), ("log_level", debug.isEmpty ? "4" : "7")]
        if !debug.isEmpty { properties.append(("debug", debug.joined(separator: ","))) }
        client = try RDKafkaClient(kind: .producer, properties: properties, context: context)
        guard let cluster = rd_kafka_mock_cluster_new(client.handle, Int32(brokers)) else {
            throw KafkaError(.mockCluster, "rd_kafka_mock_cluster_new failed")
        }
        self.cluster = cluster
        self.brokerCount = brokers
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        stop()
    }

    private func withCluster<R>(_ what: String, _ body: (OpaquePointer) -> R) throws -> R {
        try lock.withLock {
            guard let cluster else { throw KafkaError(.closed, "\(what): the embedded cluster is stopped") }
            return body(cluster)
        }
    }

    private func check(_ what: String, _ err: rd_kafka_resp_err_t) throws {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(.mockCluster, what, err: err)
        }
    }

    /// Creates a topic with `partitions` partitions.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws {
        let err = try withCluster("create topic") {
            rd_kafka_mock_topic_create($0, name, Int32(partitions), Int32(replicationFactor))
        }
        try check("create topic \(name)", err)
    }

    /// Takes a broker (1-based id) down: its connections close and it refuses new ones.
    public func setBrokerDown(_ brokerID: Int32) throws {
        try check("broker \(brokerID) down", try withCluster("broker down") { rd_kafka_mock_broker_set_down($0, brokerID) })
    }

    /// Brings a broker back up.
    public func setBrokerUp(_ brokerID: Int32) throws {
        try check("broker \(brokerID) up", try withCluster("broker up") { rd_kafka_mock_broker_set_up($0, brokerID) })
    }

    /// Adds `milliseconds` of latency to every response of a broker.
    public func setBrokerLatency(_ brokerID: Int32, milliseconds: Int) throws {
        try check("broker \(brokerID) rtt", try withCluster("broker rtt") {
            rd_kafka_mock_broker_set_rtt($0, brokerID, Int32(milliseconds))
        })
    }

    /// The next requests of type `apiKey` (cluster-wide) fail with `errors`, one each, in order.
    public func pushRequestErrors(_ apiKey: APIKey, _ errors: [ErrorCode]) throws {
        let codes = errors.map { rd_kafka_resp_err_t($0.rawValue) }
        try withCluster("push request errors") { cluster in
            codes.withUnsafeBufferPointer {
                rd_kafka_mock_push_request_errors_array(cluster, apiKey.rawValue, codes.count, $0.baseAddress)
            }
        }
    }

    /// The next `count` responses of broker `brokerID` to requests of type `apiKey`
    /// are held back `milliseconds` each (they succeed, late).
    public func delayResponses(_ apiKey: APIKey, broker brokerID: Int32, count: Int = 1, milliseconds: Int) throws {
        for _ in 0..<count {
            try check("delay \(apiKey.rawValue) on broker \(brokerID)", try withCluster("delay responses") {
                ezpoll_mock_push_error_rtt($0, brokerID, apiKey.rawValue, RD_KAFKA_RESP_ERR_NO_ERROR, Int32(milliseconds))
            })
        }
    }

    /// Forgets errors pushed for `apiKey` that have not fired yet.
    public func clearRequestErrors(_ apiKey: APIKey) throws {
        try withCluster("clear request errors") { rd_kafka_mock_clear_request_errors($0, apiKey.rawValue) }
    }

    /// Stops the brokers. Clients still connected see the brokers go away.
    public func stop() {
        let cluster = lock.withLock { () -> OpaquePointer? in
            defer { self.cluster = nil }
            return self.cluster
        }
        if let cluster { rd_kafka_mock_cluster_destroy(cluster) }
    }
}
