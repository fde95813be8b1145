import Foundation
import Kafka
import Logging
import ServiceLifecycle
import TaskModel

/// Brings a provider callback to the member that owns its task. A fleet's members sit
/// behind one address, so a callback reaches any of them; the one that gets a callback
/// for a task it does not hold writes it to the relay topic (`--callback-relay-topic`),
/// and every member reads that topic from its end (outside the consumer group, nothing
/// committed) and hands each callback of another member to its engine, as if it had come
/// over HTTP. A relayed callback is a hint like any other: lost or late, polling covers it.
///
/// Record: key = taskId, value = `{"provider":…,"taskId":…}`, header `ezpoll-member` = the
/// sender (a member skips its own).
public final class CallbackRelay: Service, Sendable {
    public static let memberHeader = "ezpoll-member"

    public let topic: String
    let member = UUID().uuidString
    private let pipeline: Pipeline
    private let reader: KafkaTopicReader
    private let logger: Logger
    private let stopped = OnceFlag()

    /// `properties`: librdkafka consumer properties (security settings and the like).
    public init(topic: String, pipeline: Pipeline, bootstrapServers: String, properties: [String: String] = [:], logger: Logger) throws {
        self.topic = topic
        self.pipeline = pipeline
        self.logger = logger
        var reading = properties
        reading["client.id"] = reading["client.id"] ?? "ezpoll-callback-relay"
        // A relayed callback is worth something only while it is fresh: fetch at once.
        reading["fetch.wait.max.ms"] = reading["fetch.wait.max.ms"] ?? "20"
        reader = try KafkaTopicReader(bootstrapServers: bootstrapServers, properties: reading, logger: logger)
    }

    /// Sends a callback this member could not use to the others (through the pipeline's producer).
    func relay(_ callback: ProviderCallback) {
        var value = JSONWriter(capacity: 64 + callback.taskId.utf8.count)
        value.string("provider", callback.provider)
        value.string("taskId", callback.taskId)
        let record = KafkaOutgoingRecord(topic: topic, key: Array(callback.taskId.utf8), value: value.finish(),
                                         headers: [KafkaHeader(name: Self.memberHeader, value: Array(member.utf8))])
        let pipeline = pipeline
        Task {
            do {
                try await pipeline.producer.enqueue(record) { result in
                    pipeline.metrics.callbackRelayed(sent: true, success: (try? result.get()) != nil)
                }
            } catch {
                pipeline.metrics.callbackRelayed(sent: true, success: false)
            }
        }
    }

    /// Reads the relay topic until the service group shuts down; a topic that cannot be
    /// read (unknown, brokers out of reach) is tried again every 5 s, with a warning: without
    /// the relay, callbacks still reach the member that got them, and polling covers the rest.
    public func run() async throws {
        await withGracefulShutdownHandler {
            while !stopped.isSet {
                do {
                    try await Blocking.run { [self] in
                        try reader.tail(topic: topic, isStopped: { stopped.isSet }) { records in
                            for record in records { received(record) }
                        }
                    }
                } catch {
                    logger.warning("callback relay: cannot read \(topic), trying again in 5 s: \(error)")
                    try? await Task.sleep(for: .seconds(5))
                }
            }
            reader.close()
        } onGracefulShutdown: { [stopped] in
            _ = stopped.set()
        }
    }

    /// Stops reading (outside a service group).
    public func stop() {
        _ = stopped.set()
    }

    private func received(_ record: KafkaRecord) {
        let sender = record.headers.first { $0.name == Self.memberHeader }?.value.map { String(decoding: $0, as: UTF8.self) }
        guard sender != member else { return }
        guard let value = record.value, let members = try? JSONScanner.members(ofObject: value, maxDepth: 4),
              let provider = members.first(where: { $0.key == "provider" && $0.kind == .string }).flatMap({ try? JSONScanner.decodeString(value, $0.range) }),
              let taskId = members.first(where: { $0.key == "taskId" && $0.kind == .string }).flatMap({ try? JSONScanner.decodeString(value, $0.range) })
        else {
            pipeline.metrics.callbackRelayed(sent: false, success: false)
            return
        }
        pipeline.metrics.callbackRelayed(sent: false, success: true)
        pipeline.callbackArrived(ProviderCallback(provider: provider, taskId: taskId), via: .relay)
    }
}
