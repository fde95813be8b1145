import Foundation
import Simulator
import TestSupport
import Kafka
@testable import Poller
@testable import PollerCore
import Testing

/// Progress, not only liveness: a partition whose committed offset stands still while
/// records wait above it is reported (metric, readiness), and so is commit metadata
/// that fills its cap.
@Suite("Progress liveness")
struct ProgressLivenessTests {
    static let partition = TopicPartition("captcha.tasks", 2)

    static func records(_ offsets: Range<Int64>) -> [KafkaRecord] {
        offsets.map { KafkaRecord(topic: partition.topic, partition: partition.partition, offset: $0, key: nil, value: nil) }
    }

    static func commit(_ offset: Int64, metadata: String = "", truncated: Bool = false) -> OffsetTracker.Commit {
        OffsetTracker.Commit(partition: PartitionID(topic: partition.topic, partition: partition.partition), offset: offset,
                             metadata: metadata, finishedAbove: 0, truncated: truncated)
    }

    @Test func aStallCountsOnlyWhileRecordsWaitAboveTheCommittedOffset() throws {
        let metrics = PipelineMetrics()
        let start = ContinuousClock.now
        metrics.consumed(Self.records(10..<20), now: start)
        let waiting = try #require(metrics.stalls(now: start + .seconds(50)).first)
        #expect(waiting.partition == Self.partition && waiting.committedOffset == 10)
        #expect(waiting.duration == .seconds(50), "records 10-19 wait above offset 10")

        metrics.committed([Self.commit(10)], metadataMaxBytes: 4096, now: start + .seconds(60))
        #expect(try #require(metrics.stalls(now: start + .seconds(70)).first).duration == .seconds(70), "the same offset again is no progress")
        metrics.committed([Self.commit(15)], metadataMaxBytes: 4096, now: start + .seconds(80))
        #expect(try #require(metrics.stalls(now: start + .seconds(90)).first).duration == .seconds(10), "the offset moved: the clock restarts")

        metrics.committed([Self.commit(20)], metadataMaxBytes: 4096, now: start + .seconds(100))
        #expect(metrics.stalls(now: start + .seconds(10_000)).first?.duration == .zero, "nothing waits above 20: no stall, however long")
        let text = PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        #expect(text[PipelineMetrics.Name.commitStall, ["topic": "captcha.tasks", "partition": "2"]] == 0)
    }

    @Test func readinessTurnsOnAStallPastTheThresholdAndNamesThePartition() {
        let stall = PipelineMetrics.Stall(partition: Self.partition, committedOffset: 41, duration: .seconds(400))
        let short = PipelineMetrics.Stall(partition: TopicPartition("captcha.tasks", 0), committedOffset: 7, duration: .seconds(30))
        let health = PipelineHealth(lifecycle: .running, assignedPartitions: 2, kafka: .init(), bannedUntil: nil,
                                    stalls: [stall, short], stallThreshold: .seconds(360))
        #expect(!health.isReady && health.isLive)
        #expect(health.notReadyReasons.count == 1)
        #expect(health.notReadyReasons.first?.contains("committed offset 41 of captcha.tasks[2] has not advanced for 400 s") == true,
                "\(health.notReadyReasons)")
        #expect(health.json().contains(#""stalledPartitions":1"#))
        let off = PipelineHealth(lifecycle: .running, assignedPartitions: 2, kafka: .init(), bannedUntil: nil,
                                 stalls: [stall], stallThreshold: nil)
        #expect(off.isReady, "no threshold, no stall check")
    }

    @Test func commitMetadataNearItsCapShowsAndDroppedRangesAreCounted() {
        let metrics = PipelineMetrics()
        metrics.consumed(Self.records(0..<100))
        metrics.committed([Self.commit(3, metadata: String(repeating: "a", count: 3_900))], metadataMaxBytes: 4_000)
        metrics.committed([Self.commit(3, metadata: String(repeating: "a", count: 4_000), truncated: true)], metadataMaxBytes: 4_000)
        let text = PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        #expect(text[PipelineMetrics.Name.commitMetadataFill, ["topic": "captcha.tasks", "partition": "2"]] == 1)
        #expect(text[PipelineMetrics.Name.commitMetadataTruncated] == 1)
    }

    @Test func theThresholdIsTheLongestWindowPlusAMinuteAndATimeScaleShrinksItToThirtySeconds() {
        var settings = PipelineSettings(profile: .ezCaptcha, brokers: "127.0.0.1:9092")
        #expect(settings.configuration.stallThreshold == .seconds(360))
        var slow = PipelineSettings.ProviderSettings(profile: .capsolver)
        slow.profile.resultWindow = .seconds(600)
        settings.providers = [PipelineSettings.ProviderSettings(profile: .ezCaptcha), slow]
        #expect(settings.configuration.stallThreshold == .seconds(660))
        settings.timeScale = 10
        #expect(settings.configuration.stallThreshold == .seconds(66))
        settings.timeScale = 100
        #expect(settings.configuration.stallThreshold == PipelineSettings.shortestStallThreshold)
        settings.timeScale = 1
        settings.stallThreshold = .seconds(90)
        #expect(settings.configuration.stallThreshold == .seconds(90))
    }
}

/// The lag a broker-side autoscaler reads, over the embedded cluster.
@Suite("Broker-side lag", .serialized)
struct BrokerLagTests {
    @Test("broker lag counts tasks in flight as well as the backlog, and falls to 0 once all are committed")
    func brokerLagFollowsTheCommittedOffsets() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        // 200 API s (10 real s at the harness's time scale): all 60 are in flight at once
        // however slowly a busy machine reads them.
        sim.solveTime = .fixed(200)
        let harness = try await PipelineHarness(simulator: sim)
        let outputs = try harness.outputs()
        var config = harness.configuration(group: "lag-group")
        config.brokerLagInterval = .milliseconds(100)
        let (pipeline, run) = try harness.start(config)
        let tasks = harness.simulator.createTasks(count: 60, clientKey: PipelineHarness.goodKey)
        try await harness.publish(tasks.map { PipelineHarness.event(taskId: $0) })
        func lag() -> Double? {
            let text = PrometheusText(String(decoding: pipeline.metricsExposition(), as: UTF8.self))
            let samples = text.samples(PipelineMetrics.Name.brokerLag)
            return samples.isEmpty ? nil : samples.map(\.value).reduce(0, +)
        }
        // While the tasks are polled nothing is committed: the brokers see all 60 as lag,
        // though none waits unread (the consumer has fetched them).
        try await waitUntil("all 60 in flight", timeout: 60) { pipeline.inFlight == 60 }
        try await waitUntil("the broker lag counts them", timeout: 60) { lag() == 60 }
        try await waitUntil("every task solved", timeout: 120) { outputs.count >= tasks.count }
        try await waitUntil("committed: no broker lag", timeout: 60) { lag() == 0 }
        pipeline.shutdown()
        try await run.value
        await outputs.close()
        await harness.shutdown()
    }
}

/// A real stall over the embedded cluster: results that cannot be published hold their
/// partitions' committed offsets while records wait above them.
@Suite("Commit stall", .serialized)
struct CommitStallTests {
    @Test("results the broker refuses stall their partitions: readiness turns red past the threshold, and green again once they are published")
    func aStalledPartitionTurnsReadinessRedAndRecovers() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .fixed(2)
        let harness = try await PipelineHarness(simulator: sim)
        let outputs = try harness.outputs()
        var config = harness.configuration(group: "stall-group")
        config.stallThreshold = .seconds(3)
        let (pipeline, run) = try harness.start(config)
        try await waitUntil("ready", timeout: 60) { !pipeline.assignedPartitions.isEmpty && pipeline.health().isReady }
        let tasks = harness.simulator.createTasks(count: 40, clientKey: PipelineHarness.goodKey)
        try await harness.publish(tasks.map { PipelineHarness.event(taskId: $0) })
        // From now on every Produce request is refused: no result is acknowledged, no offset moves.
        try harness.cluster.pushRequestErrors(.produce, Array(repeating: .topicAuthorizationFailed, count: 100_000))
        try await waitUntil("unready on a stall", timeout: 90) { !pipeline.health().isReady }
        let reasons = pipeline.health().notReadyReasons
        #expect(reasons.contains { $0.contains("has not advanced") && $0.contains(PipelineHarness.topics.input) }, "\(reasons)")
        let stalled = PrometheusText(String(decoding: pipeline.metricsExposition(), as: UTF8.self))
        #expect(stalled.samples(PipelineMetrics.Name.commitStall).contains { $0.value >= 3 }, "the stall metric shows it")

        try harness.cluster.clearRequestErrors(.produce)
        try await waitUntil("every task has an output", timeout: 120) { outputs.count >= tasks.count }
        try await waitUntil("ready again", timeout: 60) { pipeline.health().isReady }
        #expect(Set(outputs.all.compactMap(\.taskId)) == Set(tasks))
        #expect(outputs.repeated().isEmpty, "repeated: \(outputs.repeated())")
        pipeline.shutdown()
        try await run.value
        await outputs.close()
        await harness.shutdown()
    }
}
