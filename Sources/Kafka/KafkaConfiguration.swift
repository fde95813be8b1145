import Foundation

/// Parses librdkafka pass-through properties written as `key=value`.
public enum KafkaProperty {
    /// Splits `key=value` at the first `=`. The key must not be empty; the value may be.
    public static func parse(_ text: String) throws -> (key: String, value: String) {
        guard let eq = text.firstIndex(of: "=") else {
            throw KafkaError(.invalidConfiguration, "expected key=value, got '\(text)'")
        }
        let key = text[..<eq].trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty else {
            throw KafkaError(.invalidConfiguration, "empty property key in '\(text)'")
        }
        return (key, String(text[text.index(after: eq)...]))
    }

    /// Parses many `key=value` strings into a dictionary (later entries win).
    public static func parse(_ texts: [String]) throws -> [String: String] {
        var result: [String: String] = [:]
        for text in texts {
            let (key, value) = try parse(text)
            result[key] = value
        }
        return result
    }
}

/// What ezpoll configures on a consumer. `properties` passes any librdkafka property
/// through and wins over the typed fields, except `group.id` and
/// `enable.auto.offset.store`, which the delivery guarantees depend on.
public struct KafkaConsumerConfiguration: Sendable {
    public var bootstrapServers: String
    public var groupID: String
    public var clientID: String = "ezpoll"
    /// `cooperative-sticky` moves only the partitions that must move on a rebalance.
    public var assignmentStrategy: String = "cooperative-sticky"
    /// Where a group with no committed offset starts: `earliest` loses no task event.
    public var autoOffsetReset: String = "earliest"
    public var sessionTimeoutMs: Int = 10_000
    public var heartbeatIntervalMs: Int = 1_000
    /// Stored offsets are committed this often (auto-commit of *stored* offsets only);
    /// nil turns auto-commit off: the application commits explicitly with `commit(_:)`
    /// (the pipeline does, to carry metadata that auto-commit would overwrite).
    public var autoCommitIntervalMs: Int? = 1_000
    /// How long a fetch waits for data; low keeps the added latency low.
    public var fetchWaitMaxMs: Int = 50
    /// Most records handed to the application in one batch.
    public var maxBatchSize: Int = 2_000
    /// Batches buffered between the poll thread and the application before the poll
    /// thread waits for the application to catch up.
    public var maxBufferedBatches: Int = 4
    /// Bytes (keys, values, headers) buffered between the poll thread and the
    /// application before the poll thread waits: large values cannot pile up.
    public var maxBufferedBytes: Int = 32 << 20
    /// What librdkafka prefetches ahead of the application, in KiB (its own default
    /// is 64 MiB); with `maxBufferedBytes` this bounds the memory records take.
    public var queuedMaxMessagesKBytes: Int = 16 * 1024
    public var properties: [String: String] = [:]

    public init(bootstrapServers: String, groupID: String) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
    }

    /// The session timeout in force: a `session.timeout.ms` property wins over the typed field.
    var effectiveSessionTimeoutMs: Int { properties["session.timeout.ms"].flatMap { Int($0) } ?? sessionTimeoutMs }

    var rdKafkaProperties: [(String, String)] {
        var typed: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("client.id", clientID),
            ("partition.assignment.strategy", assignmentStrategy),
            ("auto.offset.reset", autoOffsetReset),
            ("session.timeout.ms", String(sessionTimeoutMs)),
            ("heartbeat.interval.ms", String(heartbeatIntervalMs)),
            ("enable.auto.commit", autoCommitIntervalMs == nil ? "false" : "true"),
            ("auto.commit.interval.ms", String(autoCommitIntervalMs ?? 5_000)),
            ("fetch.wait.max.ms", String(fetchWaitMaxMs)),
            ("enable.partition.eof", "false"),
            ("queued.max.messages.kbytes", String(queuedMaxMessagesKBytes)),
        ]
        typed = typed.filter { properties[$0.0] == nil }
        var forced: [(String, String)] = [("group.id", groupID), ("enable.auto.offset.store", "false")]
        if autoCommitIntervalMs == nil {
            // Explicit commits follow the group's join state, which librdkafka reports
            // only in its `cgrp` debug log (KafkaConsumer.GroupState).
            let debug = (properties["debug"] ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty }
            forced.append(("debug", (debug.contains("cgrp") || debug.contains("all") ? debug : debug + ["cgrp"]).joined(separator: ",")))
        }
        let passThrough = properties
            .filter { key, _ in !forced.contains { $0.0 == key } }
            .sorted { $0.key < $1.key }
            .map { ($0.key, $0.value) }
        return typed + passThrough + forced
    }
}

/// What ezpoll configures on a producer. `properties` passes any librdkafka property
/// through and wins over the typed fields.
public struct KafkaProducerConfiguration: Sendable {
    public var bootstrapServers: String
    public var clientID: String = "ezpoll"
    /// Idempotence: retries never duplicate or reorder a partition's records.
    public var enableIdempotence: Bool = true
    /// How long librdkafka waits to fill a batch; small keeps results fast.
    public var lingerMs: Int = 2
    /// How long a record may take to be delivered, retries included.
    public var messageTimeoutMs: Int = 120_000
    /// Records queued in librdkafka before `send` waits for room.
    public var queueBufferingMaxMessages: Int = 100_000
    public var properties: [String: String] = [:]

    public init(bootstrapServers: String) {
        self.bootstrapServers = bootstrapServers
    }

    var rdKafkaProperties: [(String, String)] {
        let typed: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers),
            ("client.id", clientID),
            ("enable.idempotence", enableIdempotence ? "true" : "false"),
            ("linger.ms", String(lingerMs)),
            ("message.timeout.ms", String(messageTimeoutMs)),
            ("queue.buffering.max.messages", String(queueBufferingMaxMessages)),
        ].filter { properties[$0.0] == nil }
        return typed + properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
