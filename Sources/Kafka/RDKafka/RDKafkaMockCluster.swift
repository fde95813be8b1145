import CRdKafka
import Foundation
import Logging

/// librdkafka's mock cluster (`rdkafka_mock.h`): Kafka-protocol brokers inside this
/// process, on random loopback ports, with fault injection. The C side of the
/// `EmbeddedKafka` target; codes and ids are the raw Kafka protocol values.
// @unchecked: `cluster` is an opaque C pointer, which Swift cannot check; `lock` guards
// it against `stop`, and librdkafka's mock calls hand their work to the cluster's own thread.
package final class RDKafkaMockCluster: @unchecked Sendable {
    /// The bootstrap servers string of the cluster (loopback host:port list).
    package let bootstrapServers: String
    private let client: RDKafkaClient
    private let lock = NSLock()
    private var cluster: OpaquePointer?

    /// Starts `brokers` brokers inside a client handle that lives as long as they do.
    package init(brokers: Int32, logger: Logger, debug: [String]) throws {
        let context = RDKafkaCallbackContext(logger: logger, eventHandler: nil)
        // That handle never connects anywhere, so its "no bootstrap.servers" notice is
        // muted (log_level 4 unless debug lines are asked for).
        var properties = [("client.id", "ezpoll-embedded-cluster"), ("log_level", debug.isEmpty ? "4" : "7")]
        if !debug.isEmpty { properties.append(("debug", debug.joined(separator: ","))) }
        client = try RDKafkaClient(kind: .producer, properties: properties, context: context)
        guard let cluster = rd_kafka_mock_cluster_new(client.handle, brokers) else {
            throw KafkaError(.mockCluster, "rd_kafka_mock_cluster_new failed")
        }
        self.cluster = cluster
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        stop()
    }

    /// Runs a mock call on the running cluster; throws when it is stopped or the call fails.
    private func call(_ what: String, _ body: (OpaquePointer) -> rd_kafka_resp_err_t) throws {
        let err = try lock.withLock {
            guard let cluster else { throw KafkaError(.closed, "\(what): the embedded cluster is stopped") }
            return body(cluster)
        }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(.mockCluster, what, err: err)
        }
    }

    package func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32) throws {
        try call("create topic \(name)") { rd_kafka_mock_topic_create($0, name, partitions, replicationFactor) }
    }

    package func setBrokerDown(_ brokerID: Int32) throws {
        try call("broker \(brokerID) down") { rd_kafka_mock_broker_set_down($0, brokerID) }
    }

    package func setBrokerUp(_ brokerID: Int32) throws {
        try call("broker \(brokerID) up") { rd_kafka_mock_broker_set_up($0, brokerID) }
    }

    package func setBrokerRoundTripTime(_ brokerID: Int32, milliseconds: Int32) throws {
        try call("broker \(brokerID) rtt") { rd_kafka_mock_broker_set_rtt($0, brokerID, milliseconds) }
    }

    /// The next requests of type `apiKey` (cluster-wide) fail with `errors`, one each, in order.
    package func pushRequestErrors(_ apiKey: Int16, _ errors: [Int32]) throws {
        let codes = errors.map { rd_kafka_resp_err_t($0) }
        try call("push request errors") { cluster in
            codes.withUnsafeBufferPointer {
                rd_kafka_mock_push_request_errors_array(cluster, apiKey, codes.count, $0.baseAddress)
            }
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }

    /// The next response of broker `brokerID` to a request of type `apiKey` is held
    /// back `milliseconds` (it succeeds, late).
    package func delayResponse(_ apiKey: Int16, broker brokerID: Int32, milliseconds: Int32) throws {
        try call("delay \(apiKey) on broker \(brokerID)") {
            ezpoll_mock_push_error_rtt($0, brokerID, apiKey, RD_KAFKA_RESP_ERR_NO_ERROR, milliseconds)
        }
    }

    /// Forgets errors pushed for `apiKey` that have not fired yet.
    package func clearRequestErrors(_ apiKey: Int16) throws {
        try call("clear request errors") { cluster in
            rd_kafka_mock_clear_request_errors(cluster, apiKey)
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }

    /// Stops the brokers. Clients still connected see the brokers go away.
    package func stop() {
        let cluster = lock.withLock { () -> OpaquePointer? in
            defer { self.cluster = nil }
            return self.cluster
        }
        if let cluster { rd_kafka_mock_cluster_destroy(cluster) }
    }
}
