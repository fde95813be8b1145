import Foundation
import Logging
import NIOConcurrencyHelpers

/// A Kafka producer over librdkafka: idempotent by default, one delivery result per
/// record, and backpressure when librdkafka's queue is full (the sender waits for a
/// delivery to free room: no drop, no spin).
///
/// A dedicated thread serves delivery reports (librdkafka's poll, which wakes on
/// events rather than on a timer). Call `close()` before dropping the producer.
public final class KafkaProducer: Sendable {
    public typealias Completion = @Sendable (Result<KafkaDeliveryReport, KafkaError>) -> Void

    private struct State {
        var lifecycle = Lifecycle.open
        var pollThread = PollThread.running
    }

    private enum Lifecycle {
        case open
        /// The first `close()` is flushing; later callers wait here for it.
        case closing(waiters: [CheckedContinuation<Void, Never>])
        case closed
    }

    /// The delivery thread: serving librdkafka until the closer asks it to stop and
    /// waits for it.
    private enum PollThread {
        case running
        case stopping(CheckedContinuation<Void, Never>)
        case finished
    }

    public let configuration: KafkaProducerConfiguration
    let client: RDKafkaClient
    private let logger: Logger
    private let room = RoomSignal()
    private let state = NIOLockedValueBox(State())

    public init(configuration: KafkaProducerConfiguration, logger: Logger,
                eventHandler: KafkaClientEventHandler? = nil) throws {
        self.configuration = configuration
        self.logger = logger
        let context = RDKafkaCallbackContext(logger: logger, eventHandler: eventHandler, delivery: { [room] opaque, result in
            if let opaque { Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue().completion(result) }
            room.signal()
        })
        self.client = try RDKafkaClient(kind: .producer, properties: configuration.rdKafkaProperties, context: context)
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
            guard let error = client.produce(record, opaque: box.toOpaque()) else { return }
            if error.isQueueFull && !isClosed {
                await room.wait(whileGenerationIs: generation)
                continue
            }
            box.release()
            throw error
        }
    }

    private var isClosed: Bool {
        state.withLockedValue { if case .open = $0.lifecycle { return false } else { return true } }
    }

    /// Waits until every queued record has a delivery result, at most `timeoutMs`.
    public func flush(timeoutMs: Int32 = 30_000) async throws {
        let client = self.client
        try await Blocking.run { try client.flush(timeoutMs: timeoutMs) }
    }

    /// Flushes (at most `timeoutMs`), fails whatever is still queued so no caller
    /// waits forever, and stops the delivery thread. Safe to call more than once and
    /// from several tasks at once: every call returns once the producer is closed.
    public func close(timeoutMs: Int32 = 30_000) async {
        enum Role { case closer, waiter, done }
        let role = state.withLockedValue { state -> Role in
            switch state.lifecycle {
            case .open:
                state.lifecycle = .closing(waiters: [])
                return .closer
            case .closing: return .waiter
            case .closed: return .done
            }
        }
        switch role {
        case .done:
            return
        case .waiter:
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waiting = state.withLockedValue { state -> Bool in
                    guard case .closing(let waiters) = state.lifecycle else { return false }
                    state.lifecycle = .closing(waiters: waiters + [continuation])
                    return true
                }
                if !waiting { continuation.resume() }
            }
        case .closer:
            do {
                try await flush(timeoutMs: timeoutMs)
            } catch {
                logger.error("producer close: \(error); purging the rest")
                let client = self.client
                _ = try? await Blocking.run { client.purgeAndFlush() }
            }
            room.signal()
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let finished = state.withLockedValue { state -> Bool in
                    if case .finished = state.pollThread { return true }
                    state.pollThread = .stopping(continuation)
                    return false
                }
                if finished { continuation.resume() }
            }
            let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
                defer { state.lifecycle = .closed }
                if case .closing(let waiters) = state.lifecycle { return waiters }
                return []
            }
            waiters.forEach { $0.resume() }
        }
    }

    private func pollLoop() {
        while state.withLockedValue({ if case .running = $0.pollThread { return true } else { return false } }) {
            client.poll(timeoutMs: 100)
        }
        let closer = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            defer { state.pollThread = .finished }
            if case .stopping(let continuation) = state.pollThread { return continuation }
            return nil
        }
        closer?.resume()
    }
}

/// The per-record context passed through librdkafka as the message opaque.
final class DeliveryBox: Sendable {
    let completion: KafkaProducer.Completion
    init(_ completion: @escaping KafkaProducer.Completion) { self.completion = completion }
}

/// Wakes senders that found librdkafka's queue full once a delivery frees room.
/// The generation closes the race between "queue full" and "a delivery just happened".
final class RoomSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())

    var generation: UInt64 { state.withLockedValue { $0.generation } }

    func wait(whileGenerationIs generation: UInt64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLockedValue { state -> Bool in
                if state.generation != generation { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func signal() {
        let woken = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        woken.forEach { $0.resume() }
    }
}

/// One delivery result that a single caller awaits.
final class DeliveryPromise: Sendable {
    private struct State {
        var result: Result<KafkaDeliveryReport, KafkaError>?
        var waiter: CheckedContinuation<KafkaDeliveryReport, Error>?
    }

    private let state = NIOLockedValueBox(State())

    func fulfil(_ result: Result<KafkaDeliveryReport, KafkaError>) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<KafkaDeliveryReport, Error>? in
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result.mapError { $0 as Error })
    }

    func value() async throws -> KafkaDeliveryReport {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLockedValue { state -> Result<KafkaDeliveryReport, KafkaError>? in
                if state.result == nil { state.waiter = continuation }
                return state.result
            }
            if let ready { continuation.resume(with: ready.mapError { $0 as Error }) }
        }
    }
}
