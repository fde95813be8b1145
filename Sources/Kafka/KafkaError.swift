/// An error from the Kafka layer. `code` is stable and safe to match on; `message`
/// is for people. `rdKafkaCode` is librdkafka's error code when there was one.
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

    public var description: String { "KafkaError(\(code)): \(message)" }
}
