import AsyncHTTPClient
import Foundation
import Kafka
import NIOCore
@testable import Poller
import Simulator
import TaskAPI
import Testing
import TestSupport

/// Provider callbacks end to end: the simulator POSTs them (lost, late, duplicated and
/// forged ones among them) to the pipeline's `CallbackReceiver`, over the embedded
/// Kafka cluster. Callbacks may only make polls earlier: every task still ends as
/// exactly one solution, the one a poll returned.
@Suite("Provider callbacks over the embedded cluster and the simulator", .serialized)
struct CallbackPipelineTests {
    static let token = "callback-token-0123456789"

    /// A pipeline with callbacks on (safety schedule 30 s / 15 s on the simulated clock) and its receiver.
    static func start(_ harness: PipelineHarness, group: String) async throws -> (Pipeline, Task<Void, Error>, CallbackReceiver) {
        var configuration = harness.configuration(group: group)
        let scale = harness.scale
        configuration.engine.callbacks = CallbackSchedule(firstPoll: .milliseconds(Int64(30_000 / scale)),
                                                          interval: .milliseconds(Int64(15_000 / scale)))
        let (pipeline, run) = try harness.start(configuration)
        var receiver = CallbackReceiver.Configuration(host: "127.0.0.1", port: 0, token: token)
        receiver.maxBodyBytes = 4_096
        return (pipeline, run, try await CallbackReceiver.start(receiver, pipeline: pipeline, logger: harness.logger))
    }

    /// `ezpoll_callbacks_total` by result, over providers (and by `via`, when given).
    static func callbacks(_ pipeline: Pipeline, via: String? = nil) -> [String: Double] {
        let text = PrometheusText(String(decoding: pipeline.metricsExposition(), as: UTF8.self))
        var byResult: [String: Double] = [:]
        for sample in text.samples(PipelineMetrics.Name.callbacks) where via == nil || sample.labels["via"] == via {
            byResult[sample.labels["result"] ?? "?", default: 0] += sample.value
        }
        return byResult
    }

    @Test("lost, late, duplicated and forged callbacks: every task ends as one solution from a poll, and each callback is accounted for")
    func everyTaskEndsOnceWhateverTheCallbacks() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .init(median: 15, min: 2, max: 60)
        let harness = try await PipelineHarness(simulator: sim)
        let outputs = try harness.outputs()
        let (pipeline, run, receiver) = try await Self.start(harness, group: "callback-group")
        try harness.simulator.updateConfig {
            $0.callbacks.url = "http://127.0.0.1:\(receiver.port)/callbacks/ez-captcha/\(Self.token)"
            $0.callbacks.lossProbability = 0.2
            $0.callbacks.duplicateProbability = 0.3
            $0.callbacks.forgedProbability = 0.3
            $0.callbacks.minDelay = 0
            $0.callbacks.maxDelay = 2
        }
        try await waitUntil("assigned", timeout: 60) { !pipeline.assignedPartitions.isEmpty }
        let tasks = harness.simulator.createTasks(count: 120, clientKey: PipelineHarness.goodKey)
        try await harness.publish(tasks.map { PipelineHarness.event(taskId: $0, extra: #","callback":true"#) })

        try await waitUntil("every task has an output", timeout: 180) { outputs.count >= tasks.count }
        let stats = harness.simulator.stats()
        let planned = tasks.count - stats.callbacks.lost + stats.callbacks.duplicated + stats.callbacks.forged
        try await waitUntil("every planned callback was sent", timeout: 60) {
            let now = harness.simulator.stats().callbacks
            return now.delivered + now.failed >= planned
        }
        #expect(stats.callbacks.lost > 0 && stats.callbacks.duplicated > 0 && stats.callbacks.forged > 0, "\(stats.callbacks)")
        #expect(harness.simulator.stats().callbacks.failed == 0, "the receiver answered every callback")

        let solutions = outputs.all.filter { $0.topic == PipelineHarness.topics.solutions }
        #expect(Set(solutions.compactMap(\.taskId)) == Set(tasks), "failures: \(outputs.all.filter { $0.topic != PipelineHarness.topics.solutions }.map(\.json))")
        #expect(outputs.repeated().isEmpty, "repeated: \(outputs.repeated())")
        for solution in solutions {
            let text = String(decoding: solution.value, as: UTF8.self)
            #expect(!text.contains("FORGED"), "a callback's body never becomes a solution: \(text)")
            #expect(text.contains("sim-\(solution.taskId ?? "?")"), "the solution the poll returned")
        }
        // Every callback that reached the receiver is counted once, by what it did.
        let counted = Self.callbacks(pipeline)
        #expect(counted.values.reduce(0, +) == Double(harness.simulator.stats().callbacks.delivered), "\(counted)")
        #expect(counted["poll_due", default: 0] + counted["after_call", default: 0] + counted["early", default: 0] > 0, "callbacks made polls earlier: \(counted)")

        await receiver.stop()
        pipeline.shutdown()
        try await run.value
        await outputs.close()
        await harness.shutdown()
    }

    @Test("two members behind one address: a callback for the other member's task reaches it through the relay topic")
    func theRelayBringsACallbackToTheMemberThatHoldsTheTask() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .fixed(5)
        let harness = try await PipelineHarness(simulator: sim)
        try harness.cluster.createTopic("captcha.callbacks", partitions: 2)
        let outputs = try harness.outputs()
        let members = try await [Self.start(harness, group: "relay-group"), Self.start(harness, group: "relay-group")]
        let relays = try members.map { member in
            try CallbackRelay(topic: "captcha.callbacks", pipeline: member.0, bootstrapServers: harness.cluster.bootstrapServers, logger: harness.logger)
        }
        let reading = relays.map { relay in Task { try await relay.run() } }
        // Every callback goes to the first member's receiver, as through a load balancer that picked it.
        var receiving = CallbackReceiver.Configuration(host: "127.0.0.1", port: 0, token: Self.token)
        receiving.maxBodyBytes = 4_096
        let front = try await CallbackReceiver.start(receiving, pipeline: members[0].0, relay: relays[0], logger: harness.logger)
        try await waitUntil("both members hold partitions", timeout: 90) {
            members.allSatisfy { !$0.0.assignedPartitions.isEmpty }
                && members[0].0.assignedPartitions.isDisjoint(with: members[1].0.assignedPartitions)
                && members[0].0.assignedPartitions.count + members[1].0.assignedPartitions.count == 4
        }
        try harness.simulator.updateConfig { $0.callbacks.url = "http://127.0.0.1:\(front.port)/callbacks/ez-captcha/\(Self.token)" }
        let tasks = harness.simulator.createTasks(count: 40, clientKey: PipelineHarness.goodKey)
        try await harness.publish(tasks.map { PipelineHarness.event(taskId: $0, extra: #","callback":true"#) })
        try await waitUntil("every task has an output", timeout: 120) { outputs.count >= tasks.count }
        #expect(Set(outputs.all.filter { $0.topic == PipelineHarness.topics.solutions }.compactMap(\.taskId)) == Set(tasks))
        #expect(outputs.repeated().isEmpty)
        // The second member never got a callback over HTTP; its tasks' polls came early through the relay.
        let relayed = Self.callbacks(members[1].0, via: "relay")
        // Which verdict depends on how far that task had come (usually poll_due); any verdict means it arrived.
        #expect(relayed.values.reduce(0, +) > 0 && relayed["unknown_provider"] == nil, "\(relayed)")
        #expect(Self.callbacks(members[1].0, via: "http").isEmpty)
        let sent = PrometheusText(String(decoding: members[0].0.metricsExposition(), as: UTF8.self))
        #expect((sent[PipelineMetrics.Name.callbackRelay, ["direction": "sent", "outcome": "ok"]] ?? 0) > 0)

        await front.stop()
        for relay in relays { relay.stop() }
        for task in reading { try await task.value }
        for member in members {
            await member.2.stop()
            member.0.shutdown()
            try await member.1.value
        }
        await outputs.close()
        await harness.shutdown()
    }

    @Test("the receiver: 403 without the token, 413 above the body limit, 400 without a task id, 404 elsewhere, 200 for unknown tasks")
    func theReceiverRejectsWhatItCannotUse() async throws {
        let harness = try await PipelineHarness()
        let (pipeline, run, receiver) = try await Self.start(harness, group: "callback-receiver-group")
        let base = "http://127.0.0.1:\(receiver.port)"
        func post(_ path: String, _ body: String) async throws -> Int {
            var request = HTTPClientRequest(url: base + path)
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: body))
            return Int(try await HTTPClient.shared.execute(request, timeout: .seconds(10)).status.code)
        }
        #expect(try await post("/callbacks/ez-captcha/\(Self.token)", #"{"taskId":"nobody"}"#) == 200)
        #expect(try await post("/callbacks/ez-captcha", #"{"taskId":"nobody"}"#) == 403)
        #expect(try await post("/callbacks/ez-captcha/wrong-token-0123456789", #"{"taskId":"nobody"}"#) == 403)
        #expect(try await post("/callbacks/ez-captcha/\(Self.token)", #"{"status":"ready"}"#) == 400)
        #expect(try await post("/callbacks/ez-captcha/\(Self.token)", #"{"taskId":"\#(String(repeating: "x", count: 5_000))"}"#) == 413)
        #expect(try await post("/metrics", "") == 404)
        #expect(try await post("/callbacks/no-such-provider/\(Self.token)", "id=1") == 200)
        let counted = Self.callbacks(pipeline)
        #expect(counted == ["early": 1, "unknown_provider": 1, "forbidden": 2, "malformed": 1, "too_large": 1, "not_found": 1], "\(counted)")
        let exposition = String(decoding: pipeline.metricsExposition(), as: UTF8.self)
        #expect(!exposition.contains("no-such-provider"), "a caller cannot make up label values")
        #expect(!exposition.contains(Self.token))

        await receiver.stop()
        pipeline.shutdown()
        try await run.value
        await harness.shutdown()
    }
}
