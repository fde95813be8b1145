import CRdKafka
import Logging

/// State that librdkafka's C callbacks reach through the instance opaque.
///
/// Lifetime: `RDKafkaClient` retains this object for as long as its `rd_kafka_t`
/// exists and releases it only after `rd_kafka_destroy` has returned, so a callback
/// can never see a freed context. Every closure is fixed at creation, before
/// `rd_kafka_new`, so no callback thread can see one change; none of them captures
/// the consumer or producer that owns the client.
final class RDKafkaCallbackContext: Sendable {
    typealias Rebalance = @Sendable (RDKafkaRebalance) -> Void
    typealias Delivery = @Sendable (_ opaque: UnsafeMutableRawPointer?, Result<KafkaDeliveryReport, KafkaError>) -> Void

    let logger: Logger
    let eventHandler: KafkaClientEventHandler?
    /// A consumer's rebalances; runs on the polling thread. Nil: librdkafka assigns itself.
    let rebalance: Rebalance?
    /// A producer's delivery reports with each record's opaque; runs on whichever
    /// thread serves delivery reports.
    let delivery: Delivery?
    /// The consumer group's join state after each change ("steady", "wait-join", ...),
    /// read from librdkafka's `cgrp` debug log.
    let joinState: (@Sendable (GroupJoinState) -> Void)?

    init(logger: Logger, eventHandler: KafkaClientEventHandler?, joinState: (@Sendable (GroupJoinState) -> Void)? = nil,
         rebalance: Rebalance? = nil, delivery: Delivery? = nil) {
        self.logger = logger
        self.eventHandler = eventHandler
        self.joinState = joinState
        self.rebalance = rebalance
        self.delivery = delivery
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> RDKafkaCallbackContext? {
        guard let opaque else { return nil }
        return Unmanaged<RDKafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
    }

    func log(level: Int32, facility: String, message: String) {
        // `Group "g" changed join state steady -> wait-join (state up)`
        if facility == "CGRPJOINSTATE", let joinState, let arrow = message.range(of: "-> ") {
            joinState(GroupJoinState(librdkafkaName: String(message[arrow.upperBound...].prefix { $0 != " " })))
        }
        let swiftLevel: Logger.Level
        switch level {
        case ...2: swiftLevel = .critical
        case 3: swiftLevel = .error
        case 4: swiftLevel = .warning
        case 5: swiftLevel = .notice
        case 6: swiftLevel = .info
        default: swiftLevel = .debug
        }
        logger.log(level: swiftLevel, "\(message)", metadata: ["rdkafka.facility": "\(facility)"])
    }

    func error(client: OpaquePointer?, err: rd_kafka_resp_err_t, reason: String) {
        if err == RD_KAFKA_RESP_ERR__FATAL, let client {
            var buffer = [CChar](repeating: 0, count: 512)
            let fatal = rd_kafka_fatal_error(client, &buffer, buffer.count)
            let error = KafkaError(.fatal, "fatal error: \(String(cBuffer: buffer))", err: fatal)
            logger.critical("\(error.message)")
            eventHandler?(.fatal(error))
            return
        }
        let error = KafkaError(.client, reason, err: err)
        if err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN {
            logger.error("all brokers down: \(reason)")
            eventHandler?(.allBrokersDown(error))
        } else {
            // Connection and name-resolution failures were just logged by librdkafka's
            // own log callback; a second line at warning level would only repeat them.
            let repeated = err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE
            logger.log(level: repeated ? .debug : .warning, "\(error.message)")
            eventHandler?(.error(error))
        }
    }
}
