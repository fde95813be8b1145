import CRdKafka
import Foundation
import Logging

/// A Kafka producer over librdkafka: idempotent by default, one delivery result per
/// record, and backpressure when librdkafka's queue is full (the sender waits for a
/// delivery to free room: no drop, no spin).
///
/// A dedicated thread serves delivery reports (`rd_kafka_poll`, which wakes on
/// events rather than on a timer). Call `close()` before dropping the producer.
public final class KafkaProducer: @unchecked Sendable {
    public typealias Completion = @Sendable (Result<KafkaDeliveryReport, KafkaError>) -> Void

    public let configuration: KafkaProducerConfiguration
    let client: RDKafkaClient
    private let logger: Logger
    private let room = RoomSignal()
    private let lock = NSLock()
    private var closed = false
    private var pollThreadDone: CheckedContinuation<Void, Never>?
    private var stopPolling = false
    private var pollThreadFinished = false

    public init(configuration: KafkaProducerConfiguration, logger: Logger,
                eventHandler: KafkaClientEventHandler? = nil) throws {
        self.configuration = configuration
        self.logger = logger
        let context = RDKafkaCallbackContext(logger: logger, eventHandler: eventHandler)
        context.delivery = { [room] message in
            KafkaProducer.deliver(message)
            room.signal()
        }
        self.client = try RDKafkaClient(kind: .producer, properties: configuration.rdKafkaProperties,
                                        context: context) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let message, let ctx = RDKafkaCallbackContext.from(opaque) else { return }
                ctx.delivery?(message)
            }
        }
        let thread = Thread { [self] in pollLoop() }
        thread.name = "ezpoll.kafka-producer"
        thread.start()
    }

    /// Sends a record and waits for the broker's acknowledgement.
    public func send(_ record: KafkaOutgoingRecord) async throws -> KafkaDeliveryReport {
        let promise = DeliveryPromise()
        try await enqueue(record) { promise.fulfil($0) }
        return try await promise.value()
    }

    /// Queues a record; `completion` runs once with its delivery result, on the
    /// producer's thread (keep it short). Waits while librdkafka's queue is full.
    /// Throws (and never calls `completion`) when the record cannot be queued.
    public func enqueue(_ record: KafkaOutgoingRecord, completion: @escaping Completion) async throws {
        let box = Unmanaged.passRetained(DeliveryBox(completion))
        while true {
            let generation = room.generation
            let err = produce(record, opaque: box.toOpaque())
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !isClosed {
                await room.wait(whileGenerationIs: generation)
                continue
            }
            box.release()
            throw KafkaError(.delivery, "produce to \(record.topic)", err: err)
        }
    }

    private var isClosed: Bool { lock.withLock { closed } }

    private func produce(_ record: KafkaOutgoingRecord, opaque: UnsafeMutableRawPointer) -> rd_kafka_resp_err_t {
        var headers: OpaquePointer?
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                if let value = header.value {
                    value.withUnsafeBytes { _ = rd_kafka_header_add(headers, header.name, -1, $0.baseAddress, $0.count) }
                } else {
                    _ = rd_kafka_header_add(headers, header.name, -1, nil, 0)
                }
            }
        }
        let err = Self.withOptionalBytes(record.key) { key in
            Self.withOptionalBytes(record.value) { value in
                ezpoll_produce(client.handle, record.topic, record.partition ?? RD_KAFKA_PARTITION_UA,
                               key.baseAddress, key.count, value.baseAddress, value.count, headers, opaque)
            }
        }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR, let headers {
            rd_kafka_headers_destroy(headers)
        }
        return err
    }

    /// A null buffer for nil (a null key or value); an empty array stays non-null.
    private static func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard let bytes else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return withUnsafeBytes(of: &zero) { body(UnsafeRawBufferPointer(start: $0.baseAddress, count: 0)) }
        }
        return bytes.withUnsafeBytes(body)
    }

    private static func deliver(_ message: UnsafePointer<rd_kafka_message_t>) {
        let m = message.pointee
        guard let opaque = m._private else { return }
        let box = Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue()
        let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            box.completion(.success(KafkaDeliveryReport(topic: topic, partition: m.partition, offset: m.offset)))
        } else {
            box.completion(.failure(KafkaError(.delivery, "deliver to \(topic)[\(m.partition)]", err: m.err)))
        }
    }

    /// Records queued or in flight in librdkafka.
    public var outstanding: Int { Int(rd_kafka_outq_len(client.handle)) }

    /// Waits until every queued record has a delivery result, at most `timeoutMs`.
    public func flush(timeoutMs: Int32 = 30_000) async throws {
        let client = self.client
        try await Blocking.run {
            let err = rd_kafka_flush(client.handle, timeoutMs)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(.delivery, "flush (\(rd_kafka_outq_len(client.handle)) records left)", err: err)
            }
        }
    }

    /// Flushes (at most `timeoutMs`), fails whatever is still queued so no caller
    /// waits forever, and stops the delivery thread. Safe to call more than once.
    public func close(timeoutMs: Int32 = 30_000) async {
        let first = lock.withLock { () -> Bool in
            defer { closed = true }
            return !closed
        }
        if first {
            do {
                try await flush(timeoutMs: timeoutMs)
            } catch {
                logger.error("producer close: \(error); purging the rest")
                let client = self.client
                _ = try? await Blocking.run {
                    rd_kafka_purge(client.handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
                    _ = rd_kafka_flush(client.handle, 5_000)
                }
            }
            room.signal()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = lock.withLock { () -> Bool in
                stopPolling = true
                if pollThreadFinished { return true }
                pollThreadDone = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func pollLoop() {
        while !lock.withLock({ stopPolling }) {
            rd_kafka_poll(client.handle, 100)
        }
        let waiter = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            pollThreadFinished = true
            defer { pollThreadDone = nil }
            return pollThreadDone
        }
        waiter?.resume()
    }
}

/// The per-record context passed through librdkafka as the message opaque.
final class DeliveryBox {
    let completion: KafkaProducer.Completion
    init(_ completion: @escaping KafkaProducer.Completion) { self.completion = completion }
}

/// Wakes senders that found librdkafka's queue full once a delivery frees room.
/// The generation closes the race between "queue full" and "a delivery just happened".
final class RoomSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var _generation: UInt64 = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    var generation: UInt64 { lock.withLock { _generation } }

    func wait(whileGenerationIs generation: UInt64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = lock.withLock { () -> Bool in
                if _generation != generation { return true }
                waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func signal() {
        let woken = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            _generation &+= 1
            defer { waiters.removeAll() }
            return waiters
        }
        woken.forEach { $0.resume() }
    }
}

/// One delivery result that a single caller awaits.
final class DeliveryPromise: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<KafkaDeliveryReport, KafkaError>?
    private var waiter: CheckedContinuation<KafkaDeliveryReport, Error>?

    func fulfil(_ result: Result<KafkaDeliveryReport, KafkaError>) {
        let waiter = lock.withLock { () -> CheckedContinuation<KafkaDeliveryReport, Error>? in
            self.result = result
            defer { self.waiter = nil }
            return self.waiter
        }
        waiter?.resume(with: result.mapError { $0 as Error })
    }

    func value() async throws -> KafkaDeliveryReport {
        try await withCheckedThrowingContinuation { continuation in
            let ready = lock.withLock { () -> Result<KafkaDeliveryReport, KafkaError>? in
                if result == nil { waiter = continuation }
                return result
            }
            if let ready { continuation.resume(with: ready.mapError { $0 as Error }) }
        }
    }
}
