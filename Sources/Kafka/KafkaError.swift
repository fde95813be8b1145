import CRdKafka

/// An error from the Kafka layer. `code` is stable and safe to match on; `message`
/// is for people. `rdKafkaCode` is librdkafka's `rd_kafka_resp_err_t` when there was one.
public struct KafkaError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A configuration property librdkafka rejected (unknown key or bad value).
        public static let invalidConfiguration = Code(rawValue: "invalid_configuration")
        /// librdkafka could not create a client handle.
        public static let clientCreation = Code(rawValue: "client_creation")
        /// A message could not be delivered (delivery report error or enqueue failure).
        public static let delivery = Code(rawValue: "delivery")
        /// Subscribing, assigning, storing or committing offsets failed.
        public static let consumer = Code(rawValue: "consumer")
        /// The client was closed; the operation cannot run any more.
        public static let closed = Code(rawValue: "closed")
        /// librdkafka raised a fatal error; the client instance is unusable.
        public static let fatal = Code(rawValue: "fatal")
        /// The embedded (mock) cluster rejected an operation.
        public static let mockCluster = Code(rawValue: "mock_cluster")
        /// An error that librdkafka reported through its error callback.
        public static let client = Code(rawValue: "client")
    }

    public var code: Code
    public var message: String
    public var rdKafkaCode: Int32?

    public init(_ code: Code, _ message: String, rdKafkaCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.rdKafkaCode = rdKafkaCode
    }

    init(_ code: Code, _ context: String, err: rd_kafka_resp_err_t) {
        let name = String(cString: rd_kafka_err2name(err))
        let text = String(cString: rd_kafka_err2str(err))
        self.init(code, "\(context): \(name): \(text)", rdKafkaCode: err.rawValue)
    }

    public var description: String { "KafkaError(\(code)): \(message)" }

    /// The group is rebalancing or moved on to a new generation (REBALANCE_IN_PROGRESS,
    /// ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID): commit again after the rebalance.
    public var isRebalanceConflict: Bool {
        guard let raw = rdKafkaCode else { return false }
        return [RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
                RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID].contains { $0.rawValue == raw }
    }
}
