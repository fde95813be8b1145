import Foundation
import EmbeddedKafka
import Kafka
import Logging
import Poller
import Simulator
import TaskAPI
import Testing
import TestSupport

/// The real parts for pipeline tests: librdkafka's mock cluster, the simulator on a
/// loopback port, the HTTP client, and a producer for input events.
final class PipelineHarness: @unchecked Sendable {
    /// API seconds per real second, for the simulator and the pipeline's policy alike
    /// (`EZPOLL_TEST_TIME_SCALE` overrides it for measurements closer to real time).
    static let timeScale = ProcessInfo.processInfo.environment["EZPOLL_TEST_TIME_SCALE"].flatMap(Double.init) ?? 20.0
    static let goodKey = "good-key-0123456789"
    /// The margin before the provider's window closes covers request latency, which
    /// is real time: the time scale does not shrink it (RunSettings does the same).
    static let safetyMargin = Duration.seconds(1)
    static let topics = Pipeline.Topics()

    let cluster: EmbeddedKafkaCluster
    let simulator: SimulatorServer
    let client: TaskResultClient
    let producer: KafkaProducer
    let logger: Logger
    /// This harness's API seconds per real second (`timeScale` unless given).
    let scale: Double
    /// Where each published input record landed, by its key (the taskId): for failure
    /// messages that name the partition and offset of what is missing.
    let placements = Locked<[String: (partition: Int32, offset: Int64)]>([:])

    /// `brokerLog` collects the mock brokers' own debug lines (group membership and the like).
    /// `timeScale` compresses API time for the simulator and the pipeline alike; a test whose
    /// faults act in real time (timeouts, Retry-After) can run closer to real time.
    init(partitions: Int = 4, outputPartitions: Int = 2, simulator config: SimulatorConfig? = nil,
         brokerLog: CapturingLogHandler.Store? = nil, timeScale: Double = PipelineHarness.timeScale) async throws {
        scale = timeScale
        var logger = Logger(label: "ezpoll.tests.pipeline")
        logger.logLevel = ProcessInfo.processInfo.environment["EZPOLL_TEST_LOG"] != nil ? .debug : .warning
        self.logger = logger
        if let brokerLog {
            var brokerLogger = Logger(label: "ezpoll.tests.broker") { CapturingLogHandler(store: brokerLog, label: $0) }
            brokerLogger.logLevel = .debug
            cluster = try EmbeddedKafkaCluster(brokers: 1, logger: brokerLogger, debug: ["mock"])
        } else {
            cluster = try EmbeddedKafkaCluster(brokers: 1, logger: logger)
        }
        for topic in [Self.topics.input, Self.topics.solutions, Self.topics.failures, Self.topics.deadLetters] {
            try cluster.createTopic(topic, partitions: topic == Self.topics.input ? partitions : outputPartitions)
        }
        var simConfig = config ?? SimulatorConfig()
        simConfig.timeScale = timeScale
        if config == nil {
            simConfig.validKeys = [Self.goodKey]
            simConfig.solveTime = .init(median: 15, min: 2, max: 60)
        }
        simulator = try await SimulatorServer.start(config: simConfig)
        client = try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: simulator.baseURL), logger: logger)
        var producerConfig = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        producerConfig.lingerMs = 1
        producer = try KafkaProducer(configuration: producerConfig, logger: logger)
    }

    func shutdown() async {
        await producer.close()
        await client.shutdown()
        await simulator.stop()
        cluster.stop()
    }

    /// Pipeline settings scaled to the simulator's clock.
    func configuration(group: String = "ezpoll-test", maxInFlight: Int = 10_000) -> Pipeline.Configuration {
        let s = scale
        func scaled(_ seconds: Double) -> Duration { .milliseconds(Int64(seconds * 1_000 / s)) }
        let policy = PollingPolicy(initialDelay: scaled(5), interval: scaled(3), minInterval: scaled(1), maxPolls: 100,
                                   window: scaled(300), safetyMargin: Self.safetyMargin, backoffBase: scaled(3), backoffMax: scaled(30))
        var engine = PollingEngine.Configuration()
        engine.policy = policy
        engine.defaultProvider = "ez-captcha"
        engine.defaultClientKey = ClientKey(Self.goodKey)
        engine.maxInFlight = maxInFlight
        engine.resumeBelow = maxInFlight * 9 / 10
        engine.maxConcurrentCalls = 64
        engine.rateLimit = 5_000
        engine.banDuration = scaled(60)
        engine.errorBudget = ErrorBudget(window: scaled(60))
        var consumer = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: group)
        consumer.sessionTimeoutMs = 6_000
        consumer.heartbeatIntervalMs = 500
        consumer.fetchWaitMaxMs = 10
        consumer.autoCommitIntervalMs = 200
        var producer = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        producer.lingerMs = 2
        var config = Pipeline.Configuration(engine: engine, consumer: consumer, producer: producer)
        config.drainTimeout = .seconds(10)
        return config
    }

    /// Starts a pipeline; the returned task ends when it has shut down.
    func start(_ configuration: Pipeline.Configuration, client: TaskResultClient? = nil) throws -> (Pipeline, Task<Void, Error>) {
        let pipeline = try Pipeline(configuration: configuration, client: client ?? self.client, logger: logger)
        let task = Task { try await pipeline.run() }
        return (pipeline, task)
    }

    /// Publishes raw input records (key, value) to the input topic, round-robin over partitions.
    func publish(_ records: [(key: [UInt8]?, value: [UInt8]?)], partitions: Int32 = 4, headers: [KafkaHeader] = []) async throws {
        let failures = Locked<Int>(0)
        for (i, record) in records.enumerated() {
            try await producer.enqueue(KafkaOutgoingRecord(topic: Self.topics.input, partition: Int32(i) % partitions,
                                                           key: record.key, value: record.value, headers: headers)) { [placements] result in
                switch result {
                case .failure: failures.withLock { $0 += 1 }
                case .success(let report): placements.withLock { $0[record.key.map { String(decoding: $0, as: UTF8.self) } ?? ""] = (report.partition, report.offset) }
                }
            }
        }
        try await producer.flush()
        #expect(failures.current == 0)
    }

    /// Creates `count` tasks on the simulator and publishes their events at about
    /// `perSecond`, each created just before its event is sent, the way a producer
    /// creating tasks would; round-robin over the input partitions. Returns the task ids.
    func publishNewTasks(count: Int, perSecond: Double, clientKey: String = goodKey, partitions: Int32 = 4) async throws -> [String] {
        let start = Date()
        let chunk = max(1, Int(perSecond / 20))
        var ids: [String] = []
        for base in stride(from: 0, to: count, by: chunk) {
            let due = start.addingTimeInterval(Double(base) / perSecond)
            if due > Date() { try await Task.sleep(for: .milliseconds(Int64(due.timeIntervalSinceNow * 1_000))) }
            let created = simulator.createTasks(count: min(chunk, count - base), clientKey: clientKey)
            for (i, id) in created.enumerated() {
                let event = Self.event(taskId: id)
                try await producer.enqueue(KafkaOutgoingRecord(topic: Self.topics.input, partition: Int32(base + i) % partitions,
                                                               key: event.key, value: event.value)) { [placements] result in
                    if case .success(let report) = result { placements.withLock { $0[id] = (report.partition, report.offset) } }
                }
            }
            ids += created
        }
        try await producer.flush()
        return ids
    }

    /// A task event as a producer that just created the task writes it: with its creation time.
    static func event(taskId: String, extra: String = "", createdAt: Timestamp? = nil) -> (key: [UInt8]?, value: [UInt8]?) {
        let created = extra.contains("createdAt") ? "" : #","createdAt":"\#((createdAt ?? WallClock.now()).rfc3339)""#
        return (Array(taskId.utf8), Array(#"{"taskId":"\#(taskId)"\#(created)\#(extra)}"#.utf8))
    }

    /// A task event created long ago, past its deadline: it fails as `expired` without a call.
    static func expiredEvent(taskId: String) -> (key: [UInt8]?, value: [UInt8]?) {
        event(taskId: taskId, extra: #","createdAt":"2020-01-01T00:00:00Z""#)
    }

    /// One expired event per input partition ("probe-<partition>"): its output appears as
    /// soon as a member reads that partition, so it tells when the partition is worked.
    func publishProbes(partitions: Int) async throws -> [String] {
        let probes = (0..<partitions).map { "probe-\($0)" }
        for (partition, probe) in probes.enumerated() {
            let event = Self.expiredEvent(taskId: probe)
            let report = try await producer.send(KafkaOutgoingRecord(topic: Self.topics.input, partition: Int32(partition),
                                                                      key: event.key, value: event.value))
            placements.withLock { $0[probe] = (report.partition, report.offset) }
        }
        return probes
    }

    /// Where the records of these keys lie: per input partition, how many and their
    /// offsets (the first few), e.g. `[1] 12 at 301, 305, ...; [3] 2 at 88, 90`.
    func describePlacement(of keys: [String]) -> String {
        let known = placements.current
        var byPartition: [Int32: [Int64]] = [:]
        var unknown: [String] = []
        for key in keys {
            if let place = known[key] { byPartition[place.partition, default: []].append(place.offset) } else { unknown.append(key) }
        }
        var parts = byPartition.sorted { $0.key < $1.key }.map { partition, offsets in
            let sorted = offsets.sorted()
            return "[\(partition)] \(sorted.count) at \(sorted.prefix(8).map(String.init).joined(separator: ", "))\(sorted.count > 8 ? ", ..." : "")"
        }
        if !unknown.isEmpty { parts.append("not placed: \(unknown.prefix(5))") }
        return parts.joined(separator: "; ") + " (e.g. \(keys.prefix(3)))"
    }

    /// Per input partition, one past the last offset published through this harness.
    func publishedEndOffsets() -> [Int32: Int64] {
        placements.current.values.reduce(into: [:]) { ends, place in ends[place.partition] = max(ends[place.partition] ?? 0, place.offset + 1) }
    }

    /// The group's commits of the input partitions, with their metadata, read by a
    /// consumer that does not join the group.
    func committed(group: String, partitions: Int = 4) async throws -> [TopicPartition: TopicPartitionOffset] {
        let probe = try KafkaConsumer(configuration: KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: group),
                                      logger: logger)
        let committed = try await probe.committed(for: (0..<partitions).map { TopicPartition(Self.topics.input, Int32($0)) })
        await probe.close()
        return committed
    }

    /// The group's committed offsets of the input partitions (no metadata).
    func committedOffsets(group: String, partitions: Int = 4) async throws -> [Int32: Int64] {
        try await committed(group: group, partitions: partitions).reduce(into: [:]) { $0[$1.key.partition] = $1.value.offset }
    }

    /// Reads the three output topics from a group of its own.
    func outputs(group: String = "ezpoll-test-outputs") throws -> OutputCollector {
        try OutputCollector(cluster: cluster, group: group, logger: logger)
    }
}

/// An output record, parsed.
struct Output {
    var topic: String
    var key: String?
    var value: [UInt8]
    var schemaHeader: String?
    /// Every header by name (the last of a name), as text.
    var headers: [String: String] = [:]
    var json: [String: Any]
    /// When the collector read it (the collector fetches with a 10 ms wait).
    var receivedAt: Date
    /// The record's timestamp: when the pipeline produced it.
    var producedAt: Date?
    var taskId: String? { json["taskId"] as? String }
    var sourcePartition: Int? { (json["source"] as? [String: Any])?["partition"] as? Int }
}

final class OutputCollector: @unchecked Sendable {
    let consumer: KafkaConsumer
    let records = Locked<[Output]>([])
    private var task: Task<Void, Never>?

    init(cluster: EmbeddedKafkaCluster, group: String, logger: Logger) throws {
        var config = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: group)
        config.fetchWaitMaxMs = 10
        consumer = try KafkaConsumer(configuration: config, logger: logger)
        let topics = PipelineHarness.topics
        try consumer.subscribe(topics: [topics.solutions, topics.failures, topics.deadLetters])
        task = Task { [consumer, records] in
            for await batch in consumer.batches {
                let now = Date()
                let parsed = batch.map { record -> Output in
                    let value = record.value ?? []
                    let json = (try? JSONSerialization.jsonObject(with: Data(value))) as? [String: Any] ?? [:]
                    return Output(topic: record.topic, key: record.key.map { String(decoding: $0, as: UTF8.self) },
                                  value: value,
                                  schemaHeader: record.headers.first { $0.name == MessageSchema.headerKey }
                                      .flatMap { $0.value.map { String(decoding: $0, as: UTF8.self) } },
                                  headers: Dictionary(record.headers.map { ($0.name, String(decoding: $0.value ?? [], as: UTF8.self)) }) { $1 },
                                  json: json, receivedAt: now,
                                  producedAt: record.timestampMs.map { Date(timeIntervalSince1970: Double($0) / 1_000) })
                }
                records.withLock { $0.append(contentsOf: parsed) }
            }
        }
    }

    var count: Int { records.withLock { $0.count } }
    var all: [Output] { records.current }

    /// The task ids among `taskIds` that have no output yet.
    func missing(_ taskIds: [String]) -> [String] {
        let seen = Set(all.compactMap(\.taskId))
        return taskIds.filter { !seen.contains($0) }
    }

    /// The record keys among `keys` that have no output yet (dead letters keep the original key).
    func missing(keys: [String]) -> [String] {
        let seen = Set(all.compactMap(\.key))
        return keys.filter { !seen.contains($0) }
    }

    /// Record keys with more than one output.
    func repeated() -> [String] {
        var count: [String: Int] = [:]
        for output in all { count[output.key ?? "", default: 0] += 1 }
        return count.filter { $0.value > 1 }.map(\.key).sorted()
    }

    func close() async {
        await consumer.close()
        await task?.value
    }
}
