import Foundation
import Kafka
import Poller
import Simulator
import TaskAPI
import Testing
import TestSupport

/// `ezpoll replay` over the embedded cluster: 100 tasks dead-lettered by a misconfigured
/// pipeline go back to the input and are each solved once by a fixed one.
@Suite("Replay over the embedded cluster", .serialized)
struct ReplayTests {
    static let topics = PipelineHarness.topics
    static let traceparent = KafkaHeader(name: "traceparent", string: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

    /// A harness whose tasks are solved within 2 API s... 10 API s, at 5 API s per real
    /// second: the 300 API s result window is 60 real seconds, room for two pipelines'
    /// group joins and the replays between them.
    static func harness() async throws -> PipelineHarness {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .init(median: 5, min: 2, max: 10)
        return try await PipelineHarness(simulator: sim, timeScale: 5)
    }

    static func replayer(_ harness: PipelineHarness, partitions: Set<Int32> = [], dryRun: Bool = false, force: Bool = false) -> Replayer {
        var config = Replayer.Configuration(brokers: harness.cluster.bootstrapServers, source: .deadLetters,
                                            sourceTopic: topics.deadLetters, inputTopic: topics.input, resultWindow: .seconds(300))
        config.filter.partitions = partitions
        (config.dryRun, config.force) = (dryRun, force)
        return Replayer(configuration: config, logger: harness.logger)
    }

    /// Every record of `topic` now.
    static func records(of topic: String, _ harness: PipelineHarness) throws -> [KafkaRecord] {
        let reader = try KafkaTopicReader(bootstrapServers: harness.cluster.bootstrapServers, logger: harness.logger)
        defer { reader.close() }
        var records: [KafkaRecord] = []
        _ = try reader.read(topic: topic) { records += $0 }
        return records
    }

    @Test("100 dead letters: a dry run counts and writes nothing; a replay (one partition, then the rest) copies each once; again copies none; each task is solved once; --force copies again")
    func deadLettersReplayedOnce() async throws {
        let harness = try await Self.harness()
        defer { Task { await harness.shutdown() } }
        let outputs = try harness.outputs()
        // The events name ez-captcha while this deployment polls only "capsolver": unknown_provider.
        let ids = harness.simulator.createTasks(count: 100, clientKey: PipelineHarness.goodKey)
        var wrong = harness.configuration(group: "replay")
        wrong.engine.defaultProvider = "capsolver"
        let (misconfigured, firstRun) = try harness.start(wrong)
        try await harness.publish(ids.map { PipelineHarness.event(taskId: $0, extra: #","provider":"ez-captcha","correlationId":"c-\#($0)""#) },
                                  headers: [Self.traceparent])
        try await waitUntil("100 dead letters", timeout: 120) { outputs.count >= 100 }
        misconfigured.shutdown()
        try await firstRun.value
        let letters = outputs.all
        #expect(letters.count == 100 && letters.allSatisfy { $0.topic == Self.topics.deadLetters })
        #expect(letters.allSatisfy { ($0.json["reason"] as? [String: Any])?["code"] as? String == "unknown_provider" })
        let inputBefore = try Self.records(of: Self.topics.input, harness)
        #expect(inputBefore.count == 100)

        let dry = try await Self.replayer(harness, dryRun: true).run()
        #expect(dry.scanned == 100 && dry.matching == 100 && dry.matchingByReason == ["unknown_provider": 100])
        #expect(dry.matchingByPartition.values.reduce(0, +) == 100 && dry.toCopy == 100 && dry.copied == 0 && dry.alreadyReplayed == 0)
        #expect(try Self.records(of: Self.topics.input, harness).count == 100, "a dry run writes nothing")

        // A replay that stopped after partition 0, then one of everything: the second copies only the rest.
        let partial = try await Self.replayer(harness, partitions: [0]).run()
        let rest = try await Self.replayer(harness).run()
        #expect(partial.copied == partial.toCopy && partial.failed == 0 && partial.copied > 0 && partial.copied < 100)
        #expect(rest.alreadyReplayed == partial.copied && rest.copied == 100 - partial.copied && rest.failed == 0)
        let copies = try Self.records(of: Self.topics.input, harness).filter { ReplayPosition(copyHeaders: $0.headers) != nil }
        #expect(copies.count == 100 && Set(copies.compactMap { ReplayPosition(copyHeaders: $0.headers) }).count == 100)
        #expect(Set(copies.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } }) == Set(ids))
        #expect(copies.allSatisfy { copy in copy.headers.contains(KafkaHeader(name: "ezpoll-replay-reason", string: "unknown_provider")) })

        let again = try await Self.replayer(harness).run()
        #expect(again.toCopy == 0 && again.copied == 0 && again.alreadyReplayed == 100)
        #expect(again.lines.contains { $0.contains("nothing to copy") })

        // The fixed deployment, in the same group (so it goes on after the dead-lettered records),
        // polls ez-captcha: every replayed task is solved, once.
        let (fixed, secondRun) = try harness.start(harness.configuration(group: "replay"))
        let solved = { outputs.all.filter { $0.topic == Self.topics.solutions } }
        try await waitUntil("100 solutions", timeout: 120) { Set(solved().compactMap(\.taskId)) == Set(ids) }
        fixed.shutdown()
        try await secondRun.value
        var solutions: [String: Int] = [:]
        for solution in solved() { solutions[solution.taskId ?? "", default: 0] += 1 }
        #expect(solutions.count == 100 && solutions.values.allSatisfy { $0 == 1 }, "repeated: \(solutions.filter { $0.value > 1 }.keys.sorted())")
        #expect(outputs.all.filter { $0.topic != Self.topics.solutions }.count == 100, "no new dead letter or failure")
        #expect(solved().allSatisfy { $0.json["correlationId"] as? String == "c-\($0.taskId ?? "")" })
        #expect(solved().allSatisfy { $0.headers["traceparent"] == Self.traceparent.value.map { String(decoding: $0, as: UTF8.self) } },
                "the trace context went from the event to its dead letter, the copy and the solution")

        let forced = try await Self.replayer(harness, force: true).run()
        #expect(forced.alreadyReplayed == 100 && forced.copied == 100)
        #expect(try Self.records(of: Self.topics.input, harness).count == 300)
        await outputs.close()
    }

    @Test("the topic reader reads the partitions asked for, from their oldest record to the end they had, and says which offsets")
    func readerReadsToTheEnd() async throws {
        let harness = try await Self.harness()
        defer { Task { await harness.shutdown() } }
        try await harness.publish((0..<20).map { (key: Array("k\($0)".utf8), value: Array("v\($0)".utf8)) })
        let reader = try KafkaTopicReader(bootstrapServers: harness.cluster.bootstrapServers, logger: harness.logger)
        defer { reader.close() }
        var some: [KafkaRecord] = []
        let ranges = try reader.read(topic: Self.topics.input, partitions: [1, 3]) { some += $0 }
        #expect(ranges == [TopicPartition(Self.topics.input, 1): 0..<5, TopicPartition(Self.topics.input, 3): 0..<5])
        #expect(some.count == 10 && Set(some.map(\.partition)) == [1, 3])
        #expect(some.filter { $0.partition == 1 }.map(\.offset) == Array(0..<5), "in offset order")
    }
}
