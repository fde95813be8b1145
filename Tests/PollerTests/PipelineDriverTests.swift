import Foundation
import Kafka
import Logging
import Poller
import TaskAPI
import Testing
import TestSupport

/// The driver (`Pipeline`) on scripted parts: an input whose records, rebalances and
/// commit answers the test decides, an output whose acknowledgements the test
/// releases, and a provider client with scripted answers. Fast and deterministic;
/// the same paths run over the embedded Kafka cluster and the simulator in
/// `PipelineTests` and `ProcessReliabilityTests`.
@Suite struct PipelineDriverTests {
    static let input = TopicPartition("captcha.tasks", 0)

    @Test func outputsAreAcknowledgedBeforeTheirOffsetsCommit() async throws {
        let parts = ScriptedParts()
        parts.client.script("ready-1", .ready(solution: try RawJSON(validating: #"{"token":"t"}"#)))
        parts.client.script("unsolvable-1", .failed(.task, code: "ERROR_CAPTCHA_UNSOLVABLE", description: "no", errorId: 12))
        parts.output.holdAcknowledgements = true
        let pipeline = parts.pipeline()
        let run = try await parts.start(pipeline)
        parts.input.assign([Self.input])
        parts.input.deliver([
            Self.record(0, #"{"taskId":"ready-1"}"#),
            Self.record(1, "{not json"),
            Self.record(2, #"{"taskId":"unsolvable-1"}"#),
        ])
        try await waitUntil("three outputs queued", timeout: 20) { parts.output.queued.count == 3 }
        #expect(parts.input.highestCommitted(Self.input) == nil, "nothing is committed before the broker acknowledged it")

        parts.output.releaseAcknowledgements()
        try await waitUntil("offset 3 committed", timeout: 20) { parts.input.highestCommitted(Self.input) == 3 }
        let topics = Dictionary(grouping: parts.output.acknowledged, by: \.topic).mapValues(\.count)
        #expect(topics == ["captcha.solutions": 1, "captcha.failures": 1, "captcha.tasks.dlq": 1])
        let failure = try #require(parts.output.acknowledged.first { $0.topic == "captcha.failures" })
        let json = try #require(try JSONSerialization.jsonObject(with: Data(failure.value ?? [])) as? [String: Any])
        #expect(json["errorCode"] as? String == "ERROR_CAPTCHA_UNSOLVABLE")
        #expect(json["errorId"] as? Int == 12)
        #expect(parts.client.calls(of: "ready-1") == 1)

        pipeline.shutdown()
        try await run.value
        #expect(parts.input.isClosed)
    }

    @Test func aRefusedResultIsSentAgainAndItsOffsetWaits() async throws {
        let parts = ScriptedParts()
        parts.client.script("ready-1", .ready(solution: try RawJSON(validating: #""t""#)))
        parts.output.refuseFirst = 2
        let pipeline = parts.pipeline()
        let run = try await parts.start(pipeline)
        parts.input.assign([Self.input])
        parts.input.deliver([Self.record(0, #"{"taskId":"ready-1"}"#)])
        try await waitUntil("offset 1 committed", timeout: 20) { parts.input.highestCommitted(Self.input) == 1 }
        #expect(parts.output.queued.count == 3, "refused twice, then acknowledged")
        #expect(parts.output.acknowledged.count == 1)
        pipeline.shutdown()
        try await run.value
    }

    @Test func commitsHeldDuringARebalanceAreSentAfterIt() async throws {
        let parts = ScriptedParts()
        parts.client.script("ready-1", .ready(solution: try RawJSON(validating: #""t""#)))
        parts.input.holdCommits(3)
        let pipeline = parts.pipeline()
        let run = try await parts.start(pipeline)
        parts.input.assign([Self.input])
        parts.input.deliver([Self.record(0, #"{"taskId":"ready-1"}"#)])
        try await waitUntil("offset 1 committed", timeout: 20) { parts.input.highestCommitted(Self.input) == 1 }
        #expect(parts.input.heldCommits == 3)
        pipeline.shutdown()
        try await run.value
    }

    @Test func aRevokeLetsTheCallInProgressFinishAndCommitsItsResult() async throws {
        let parts = ScriptedParts()
        parts.client.script("slow-1", .ready(solution: try RawJSON(validating: #""t""#)), gated: true)
        parts.client.script("waiting-1", .processing)
        let pipeline = parts.pipeline()
        let run = try await parts.start(pipeline)
        parts.input.assign([Self.input])
        parts.input.deliver([Self.record(0, #"{"taskId":"slow-1"}"#)])
        try await waitUntil("the call is in progress", timeout: 20) { parts.client.calls(of: "slow-1") == 1 }

        // The rebalance callback blocks its thread (librdkafka's) until the drain ends. The
        // scripted input takes commits only for partitions it still assigns, and it drops
        // the partition only when the callback returns: a commit of offset 1 proves the
        // revoke waited for the call in progress (no sleep and negative check needed).
        let revoked = parts.input.revokeOnItsThread([Self.input])
        parts.client.openGate("slow-1")
        try await waitUntil("revoke returned", timeout: 20) { revoked.isSet }
        #expect(parts.output.acknowledged.map(\.topic) == ["captcha.solutions"])
        #expect(parts.input.highestCommitted(Self.input) == 1, "committed while the partition was still ours")

        pipeline.shutdown()
        try await run.value
    }

    @Test func aGracefulStopFinishesTheCallInProgressThenCommitsAndCloses() async throws {
        let parts = ScriptedParts()
        parts.client.script("slow-1", .ready(solution: try RawJSON(validating: #""t""#)), gated: true)
        parts.client.script("processing-1", .processing)
        let pipeline = parts.pipeline()
        let run = try await parts.start(pipeline)
        parts.input.assign([Self.input])
        parts.input.deliver([Self.record(0, #"{"taskId":"slow-1"}"#), Self.record(1, #"{"taskId":"processing-1"}"#)])
        try await waitUntil("both polled", timeout: 20) {
            parts.client.calls(of: "slow-1") == 1 && parts.client.calls(of: "processing-1") >= 1
        }
        pipeline.shutdown()
        #expect(parts.input.isPaused, "no new records once stopping")
        parts.client.openGate("slow-1")
        try await run.value
        #expect(parts.output.acknowledged.map(\.topic) == ["captcha.solutions"], "the waiting task is left to the next owner")
        #expect(parts.input.highestCommitted(Self.input) == 1, "the final commit holds the finished record, not the waiting one")
        #expect(parts.input.isClosed)
    }

    @Test func membersShareTheRateLimitByTheirInputPartitions() async throws {
        let parts = ScriptedParts()
        let pipeline = parts.pipeline()
        let run = try await parts.start(pipeline)
        let topic = Self.input.topic
        #expect(pipeline.callsPerSecond == 10_000)
        parts.input.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        try await waitUntil("2 of the topic's 4 partitions: half the rate", timeout: 20) { pipeline.callsPerSecond == 5_000 }
        let revoked = parts.input.revokeOnItsThread([TopicPartition(topic, 1)])
        try await waitUntil("revoke returned", timeout: 20) { revoked.isSet }
        #expect(pipeline.callsPerSecond == 2_500, "1 of 4")
        pipeline.shutdown()
        try await run.value

        let perProcess = ScriptedParts()
        let whole = perProcess.pipeline(shareRateLimitWithGroup: false)
        let running = try await perProcess.start(whole)
        // A record on the one assigned partition comes back as a dead letter once the
        // pipeline has processed the assignment; only then is the rate worth reading.
        perProcess.input.assign([TopicPartition(topic, 0)])
        perProcess.input.deliver([KafkaRecord(topic: topic, partition: 0, offset: 0, key: nil, value: Array("not json".utf8),
                                              headers: [], timestampMs: nil)])
        try await waitUntil("the assignment was processed", timeout: 20) { perProcess.output.acknowledged.count == 1 }
        #expect(whole.callsPerSecond == 10_000, "--rate-limit-scope process: the whole rate, not 1 of 4")
        whole.shutdown()
        try await running.value
    }

    static func record(_ offset: Int64, _ value: String) -> KafkaRecord {
        KafkaRecord(topic: input.topic, partition: input.partition, offset: offset,
                    key: nil, value: Array(value.utf8), headers: [], timestampMs: nil)
    }
}

// MARK: - Scripted parts

/// One set of scripted parts and a pipeline on them that polls at once.
struct ScriptedParts {
    let input = ScriptedInput()
    let output = ScriptedOutput()
    let client = ScriptedClient()

    func pipeline(shareRateLimitWithGroup: Bool = true) -> Pipeline {
        var engine = PollingEngine.Configuration()
        engine.policy = testPolicy(initialDelay: .zero, interval: .milliseconds(20), minInterval: .zero)
        engine.defaultClientKey = ClientKey("scripted-key")
        engine.rateLimit = 10_000
        var configuration = Pipeline.Configuration(
            engine: engine,
            consumer: KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:1", groupID: "scripted"),
            producer: KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:1"))
        configuration.commitInterval = .milliseconds(10)
        configuration.publishRetryDelay = .milliseconds(10)
        configuration.drainTimeout = .seconds(20)
        configuration.shareRateLimitWithGroup = shareRateLimitWithGroup
        return Pipeline(configuration: configuration, input: input, output: output, client: client,
                        logger: Logger(label: "driver-test"))
    }

    /// Runs the pipeline until it subscribed (as librdkafka, the input assigns only then).
    func start(_ pipeline: Pipeline) async throws -> Task<Void, any Error> {
        let run = Task { try await pipeline.run() }
        try await waitUntil("subscribed", timeout: 20) { input.isSubscribed }
        return run
    }
}

/// An input whose records and rebalances the test delivers; it records commits.
final class ScriptedInput: PipelineInput {
    private struct State {
        var handler: KafkaConsumer.RebalanceHandler?
        var subscribed = false
        var assigned: Set<TopicPartition> = []
        var paused = false
        var closed = false
        var holdCommits = 0
        var heldCommits = 0
        var committed: [TopicPartition: Int64] = [:]
    }

    private let state = Locked(State())
    private let (records, recordsIn) = AsyncStream.makeStream(of: [KafkaRecord].self)

    func assign(_ partitions: [TopicPartition]) {
        let handler = state.withLock { state in
            state.assigned.formUnion(partitions)
            return state.handler
        }
        handler?(.assigned(partitions, committed: [:]))
    }

    /// Revokes on a thread of its own, as librdkafka calls the rebalance callback; the flag
    /// is set when the callback returned.
    func revokeOnItsThread(_ partitions: [TopicPartition]) -> OnceFlag {
        let done = OnceFlag()
        Thread.detachNewThread { [state] in
            let handler = state.withLock { $0.handler }
            handler?(.revoked(partitions, lost: false))
            state.withLock { $0.assigned.subtract(partitions) }
            _ = done.set()
        }
        return done
    }

    func deliver(_ batch: [KafkaRecord]) { recordsIn.yield(batch) }
    func holdCommits(_ count: Int) { state.withLock { $0.holdCommits = count } }
    func highestCommitted(_ partition: TopicPartition) -> Int64? { state.withLock { $0.committed[partition] } }
    var heldCommits: Int { state.withLock { $0.heldCommits } }
    var isPaused: Bool { state.withLock { $0.paused } }
    var isClosed: Bool { state.withLock { $0.closed } }

    func setRebalanceHandler(_ handler: @escaping KafkaConsumer.RebalanceHandler) {
        state.withLock { $0.handler = handler }
    }

    func subscribe(topics: [String]) throws { state.withLock { $0.subscribed = true } }
    var isSubscribed: Bool { state.withLock { $0.subscribed } }

    func nextBatch() async -> [KafkaRecord]? {
        var iterator = records.makeAsyncIterator()
        return await iterator.next()
    }

    var assignedPartitions: Set<TopicPartition> { state.withLock { $0.assigned } }
    func pauseAll() { state.withLock { $0.paused = true } }
    func isPaused(_ partition: TopicPartition) -> Bool { state.withLock { $0.paused && $0.assigned.contains(partition) } }
    func resumeAll() { state.withLock { $0.paused = false } }

    func commitBlocking(force: Bool, _ make: () -> [TopicPartitionOffset]) -> [TopicPartition: KafkaError]? {
        let held = state.withLock { state -> Bool in
            guard !force, state.holdCommits > 0 else { return false }
            state.holdCommits -= 1
            state.heldCommits += 1
            return true
        }
        if held { return nil }
        let offsets = make()
        state.withLock { state in
            for offset in offsets {
                #expect(offset.offset >= state.committed[offset.topicPartition] ?? 0, "a commit never moves back")
                state.committed[offset.topicPartition] = offset.offset
            }
        }
        return [:]
    }

    func waitUntilCommitsAllowed(timeout: Duration) async -> Bool { true }
    func coordinatorReachable(probing partition: TopicPartition, timeoutMs: Int32) async -> Bool { true }
    /// No broker here: the real lag is tested over the embedded cluster.
    func brokerLag(for partitions: [TopicPartition], timeoutMs: Int32) async throws -> [TopicPartition: Int64] { [:] }
    func partitionCount(of topic: String, timeoutMs: Int32) -> Int? { topic == PipelineDriverTests.input.topic ? 4 : nil }

    func close() async {
        state.withLock { $0.closed = true }
        recordsIn.finish()
    }
}

/// An output that acknowledges on a thread of its own (as librdkafka's delivery
/// reports do), refuses the first `refuseFirst` records, or holds acknowledgements
/// until released.
final class ScriptedOutput: PipelineOutput {
    private struct State {
        var queued: [KafkaOutgoingRecord] = []
        var acknowledged: [KafkaOutgoingRecord] = []
        var held: [(KafkaOutgoingRecord, KafkaProducer.Completion)] = []
        var hold = false
        var refuse = 0
    }

    private let state = Locked(State())

    var holdAcknowledgements: Bool {
        get { state.withLock { $0.hold } }
        set { state.withLock { $0.hold = newValue } }
    }

    var refuseFirst: Int {
        get { state.withLock { $0.refuse } }
        set { state.withLock { $0.refuse = newValue } }
    }

    var queued: [KafkaOutgoingRecord] { state.withLock { $0.queued } }
    var acknowledged: [KafkaOutgoingRecord] { state.withLock { $0.acknowledged } }

    func releaseAcknowledgements() {
        let held = state.withLock { state in
            state.hold = false
            defer { state.held = [] }
            return state.held
        }
        for (record, completion) in held { acknowledge(record, completion) }
    }

    func enqueue(_ record: KafkaOutgoingRecord, completion: @escaping KafkaProducer.Completion) async throws {
        enum Next { case hold, refuse, acknowledge }
        let next = state.withLock { state -> Next in
            state.queued.append(record)
            if state.refuse > 0 {
                state.refuse -= 1
                return .refuse
            }
            if state.hold {
                state.held.append((record, completion))
                return .hold
            }
            return .acknowledge
        }
        switch next {
        case .hold: break
        case .refuse:
            Thread.detachNewThread { completion(.failure(KafkaError(.delivery, "scripted refusal"))) }
        case .acknowledge:
            acknowledge(record, completion)
        }
    }

    private func acknowledge(_ record: KafkaOutgoingRecord, _ completion: @escaping KafkaProducer.Completion) {
        Thread.detachNewThread { [state] in
            state.withLock { $0.acknowledged.append(record) }
            completion(.success(KafkaDeliveryReport(topic: record.topic, partition: 0, offset: 0)))
        }
    }

    func flush(timeoutMs: Int32) async throws {}
    func close(timeoutMs: Int32) async {}
}

/// A provider client with one scripted answer per task; a gated task's call waits
/// until the test opens its gate.
final class ScriptedClient: TaskResultFetching {
    private struct State {
        var answers: [String: TaskOutcome] = [:]
        var gates: [String: [CheckedContinuation<Void, Never>]] = [:]
        var gated: Set<String> = []
        var calls: [String: Int] = [:]
    }

    private let state = Locked(State())

    func script(_ taskId: String, _ answer: TaskOutcome, gated: Bool = false) {
        state.withLock { state in
            state.answers[taskId] = answer
            if gated { state.gated.insert(taskId) }
        }
    }

    func openGate(_ taskId: String) {
        let waiting = state.withLock { state in
            state.gated.remove(taskId)
            return state.gates.removeValue(forKey: taskId) ?? []
        }
        for continuation in waiting { continuation.resume() }
    }

    func calls(of taskId: String) -> Int { state.withLock { $0.calls[taskId, default: 0] } }

    func getTaskResult(taskId: String, clientKey: ClientKey) async -> TaskOutcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let wait = state.withLock { state -> Bool in
                state.calls[taskId, default: 0] += 1
                guard state.gated.contains(taskId) else { return false }
                state.gates[taskId, default: []].append(continuation)
                return true
            }
            if !wait { continuation.resume() }
        }
        return state.withLock { $0.answers[taskId] } ?? .failed(.unknownTask, code: "ERROR_NO_SUCH_CAPCHA_ID", description: nil)
    }
}
