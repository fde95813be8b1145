import CRdKafka

extension KafkaError {
    /// An error that carries librdkafka's code, its name and its text after `context`.
    init(_ code: Code, _ context: String, err: rd_kafka_resp_err_t) {
        self.init(code, "\(context): \(String(cString: rd_kafka_err2name(err))): \(rdKafkaErrorText(err))",
                  rdKafkaCode: err.rawValue)
    }

    /// The group is rebalancing or moved on to a new generation (REBALANCE_IN_PROGRESS,
    /// ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID): commit again after the rebalance.
    public var isRebalanceConflict: Bool {
        guard let raw = rdKafkaCode else { return false }
        return [RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
                RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID].contains { $0.rawValue == raw }
    }

    /// librdkafka's producer queue is full: wait for a delivery to free room.
    var isQueueFull: Bool { rdKafkaCode == RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue }
}

/// librdkafka's text for an error code.
func rdKafkaErrorText(_ err: rd_kafka_resp_err_t) -> String {
    String(cString: rd_kafka_err2str(err))
}

/// librdkafka's text for an error code, or nil for success and for the codes in `ignoring`.
func rdKafkaFailureText(_ err: rd_kafka_resp_err_t, ignoring: [rd_kafka_resp_err_t] = []) -> String? {
    err == RD_KAFKA_RESP_ERR_NO_ERROR || ignoring.contains(err) ? nil : rdKafkaErrorText(err)
}
