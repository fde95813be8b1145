import CRdKafka
import Logging

/// One call of librdkafka's rebalance callback: what happened, to which partitions,
/// and the calls that answer it. Lives only for the duration of the callback.
struct RDKafkaRebalance {
    enum Kind {
        case assign
        case revoke
        /// librdkafka's text for the rebalance error.
        case error(String)
    }

    let consumer: RDKafkaConsumerHandle
    private let err: rd_kafka_resp_err_t
    private let list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(consumer: RDKafkaConsumerHandle, err: rd_kafka_resp_err_t, list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        self.consumer = consumer
        self.err = err
        self.list = list
    }

    var kind: Kind {
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS: return .assign
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS: return .revoke
        default: return .error(rdKafkaErrorText(err))
        }
    }

    var partitions: [TopicPartition] { RDKafkaTopicPartitionList.partitions(list) }

    /// Whether the group uses the incremental (cooperative) protocol.
    var isCooperative: Bool { String(cString: rd_kafka_rebalance_protocol(consumer.rk)) == "COOPERATIVE" }

    /// Whether a revoke means the partitions were lost (session timeout, fatal error).
    var isAssignmentLost: Bool { rd_kafka_assignment_lost(consumer.rk) != 0 }

    /// Starts each partition of an assignment at its committed offset.
    func startAt(_ committed: [TopicPartition: TopicPartitionOffset]) {
        let count = Int(list.pointee.cnt)
        guard count > 0, let elems = list.pointee.elems else { return }
        for i in 0..<count {
            let tp = TopicPartition(String(cString: elems[i].topic), elems[i].partition)
            if let offset = committed[tp]?.offset { elems[i].offset = offset }
        }
    }

    /// Takes the partitions (incrementally under the cooperative protocol).
    func assign(cooperative: Bool, logger: Logger) {
        if cooperative {
            Self.report(rd_kafka_incremental_assign(consumer.rk, list), "incremental assign", logger)
        } else {
            Self.report(rd_kafka_assign(consumer.rk, list), "assign", logger)
        }
    }

    /// Gives the partitions up (incrementally under the cooperative protocol).
    func unassign(cooperative: Bool, logger: Logger) {
        if cooperative {
            Self.report(rd_kafka_incremental_unassign(consumer.rk, list), "incremental unassign", logger)
        } else {
            Self.report(rd_kafka_assign(consumer.rk, nil), "unassign", logger)
        }
    }

    /// Logs and frees the error object of an incremental call.
    private static func report(_ error: OpaquePointer?, _ what: String, _ logger: Logger) {
        guard let error else { return }
        logger.error("\(what): \(String(cString: rd_kafka_error_string(error)))")
        rd_kafka_error_destroy(error)
    }

    private static func report(_ err: rd_kafka_resp_err_t, _ what: String, _ logger: Logger) {
        if let text = rdKafkaFailureText(err) { logger.error("\(what): \(text)") }
    }

    /// After a rebalance error: drops the whole assignment.
    func unassignAll() {
        rd_kafka_assign(consumer.rk, nil)
    }
}
