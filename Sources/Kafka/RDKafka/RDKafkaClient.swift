import CRdKafka
import Logging

/// Owns one `rd_kafka_t` and the callback context its C callbacks use.
///
/// Lifetime: the handle is destroyed in `deinit`, then the context is released, so
/// the context outlives every callback. Whoever polls the handle (a consumer or
/// producer thread) holds a strong reference to this object while it polls.
// @unchecked: `handle` is an opaque C pointer, which Swift cannot check; librdkafka
// documents `rd_kafka_t` as safe to call from any thread, and nothing else here changes.
final class RDKafkaClient: @unchecked Sendable {
    enum Kind {
        case consumer
        case producer
    }

    let handle: OpaquePointer
    let context: RDKafkaCallbackContext
    private let retainedContext: Unmanaged<RDKafkaCallbackContext>
    private let destroyFlags: Int32

    /// Creates a handle from `properties`. Any property librdkafka rejects throws an
    /// error naming that key, and the `rd_kafka_conf_t` is destroyed on every failure
    /// path (librdkafka takes ownership only when `rd_kafka_new` succeeds). The
    /// context's rebalance and delivery closures, when given, become the handle's
    /// rebalance and delivery-report callbacks.
    init(kind: Kind, properties: [(String, String)], context: RDKafkaCallbackContext) throws {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(.clientCreation, "rd_kafka_conf_new failed")
        }
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in properties {
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(.invalidConfiguration,
                                 "librdkafka property '\(key)': \(String(cBuffer: errstr))")
            }
        }
        let retained = Unmanaged.passRetained(context)
        rd_kafka_conf_set_opaque(conf, retained.toOpaque())
        rd_kafka_conf_set_log_cb(conf) { rk, level, fac, buf in
            guard let rk, let ctx = RDKafkaCallbackContext.from(rd_kafka_opaque(rk)) else { return }
            ctx.log(level: level, facility: fac.map { String(cString: $0) } ?? "", message: buf.map { String(cString: $0) } ?? "")
        }
        rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
            guard let ctx = RDKafkaCallbackContext.from(opaque) else { return }
            ctx.error(client: rk, err: rd_kafka_resp_err_t(err), reason: reason.map { String(cString: $0) } ?? "")
        }
        if context.rebalance != nil {
            rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
                guard let rk, let partitions, let rebalance = RDKafkaCallbackContext.from(opaque)?.rebalance else { return }
                rebalance(RDKafkaRebalance(consumer: RDKafkaConsumerHandle(rk: rk), err: err, list: partitions))
            }
        }
        if context.delivery != nil {
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let message, let delivery = RDKafkaCallbackContext.from(opaque)?.delivery else { return }
                delivery(message.pointee._private, RDKafkaClient.deliveryResult(message.pointee))
            }
        }
        let type = kind == .consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER
        guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            retained.release()
            throw KafkaError(.clientCreation, "rd_kafka_new: \(String(cBuffer: errstr))")
        }
        self.handle = rk
        self.context = context
        self.retainedContext = retained
        // A consumer is closed explicitly (KafkaConsumer.close) on its polling thread;
        // destroy must not run a second close from another thread.
        self.destroyFlags = kind == .consumer ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0
        // A consumer's records and events all come through `rd_kafka_consumer_poll`.
        if kind == .consumer { rd_kafka_poll_set_consumer(rk) }
    }

    deinit {
        rd_kafka_destroy_flags(handle, destroyFlags)
        retainedContext.release()
    }

    /// The consumer calls on this handle.
    var consumer: RDKafkaConsumerHandle { RDKafkaConsumerHandle(rk: handle) }
}

extension String {
    /// The text of a NUL-terminated C buffer that librdkafka filled (an error string).
    init(cBuffer buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
