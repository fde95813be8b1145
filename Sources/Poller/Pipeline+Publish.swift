import Foundation
import Kafka
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskAPI

// Pipeline: solutions, failures and dead letters to their topics; a delivery report finishes the offset.
extension Pipeline {
    /// What an acknowledgement finishes in the engine.
    enum Acknowledges: Sendable {
        case task(TaskHandle)
        case deadLetter(OffsetTracker.Token)
    }

    func record(_ taskId: String, _ value: [UInt8], _ topic: String, _ schema: MessageSchema, trace: TraceContext?) -> KafkaOutgoingRecord {
        KafkaOutgoingRecord(topic: topic, key: Array(taskId.utf8), value: value, headers: Self.headers(schema, trace))
    }

    /// The schema header, and the input's trace context carried on.
    static func headers(_ schema: MessageSchema, _ trace: TraceContext?) -> [KafkaHeader] {
        [KafkaHeader(name: MessageSchema.headerKey, string: schema.headerValue)]
            + (trace?.headers.map { KafkaHeader(name: $0.name, string: $0.value) } ?? [])
    }

    /// Queues the output; when the broker acknowledges it, its record is finished
    /// and the watermark may move. A failed delivery is retried: the watermark
    /// holds until the output is acknowledged, so nothing is lost.
    func publish(_ acknowledges: Acknowledges, _ outgoing: KafkaOutgoingRecord) async {
        do {
            try await producer.enqueue(outgoing) { [weak self] result in
                guard let self else { return }
                switch result {
                case .success:
                    counters.acknowledged()
                    metrics.delivered(topic: outgoing.topic, success: true)
                    let actions = withEngine { engine in
                        switch acknowledges {
                        case .task(let handle): return engine.published(handle)
                        case .deadLetter(let token): return engine.deadLetterPublished(token)
                        }
                    }
                    if let tracing, case .task(let handle) = acknowledges { tracing.acknowledged(handle, at: WallClock.now()) }
                    perform(actions)
                    signalDrained()
                case .failure(let error):
                    metrics.delivered(topic: outgoing.topic, success: false)
                    logger.error("result not delivered, retrying", metadata: ["topic": "\(outgoing.topic)", "error": "\(error)"])
                    retryPublish(acknowledges, outgoing)
                }
            }
        } catch {
            // Never dropped: the task keeps its partition's watermark until the output is
            // acknowledged (or the partition is revoked and its next owner processes it).
            guard !stopRequested.isSet else {
                logger.error("result could not be queued while stopping; its record will be processed again",
                             metadata: ["topic": "\(outgoing.topic)", "error": "\(error)"])
                return
            }
            logger.error("result could not be queued, retrying", metadata: ["topic": "\(outgoing.topic)", "error": "\(error)"])
            retryPublish(acknowledges, outgoing)
        }
    }

    func retryPublish(_ acknowledges: Acknowledges, _ outgoing: KafkaOutgoingRecord) {
        Task {
            try? await Task.sleep(for: self.configuration.publishRetryDelay)
            await self.publish(acknowledges, outgoing)
        }
    }
}
