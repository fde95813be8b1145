import Foundation
import Kafka
@testable import Poller
@testable import PollerCore
import Simulator
import Testing
import TestSupport

/// W3C trace context: read from the input record's headers, carried on to its output.
@Suite("Trace context")
struct TraceContextTests {
    static let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    static func context(_ parent: String, _ state: String? = nil) -> TraceContext? {
        TraceContext(traceparent: Array(parent.utf8), tracestate: state.map { Array($0.utf8) })
    }

    @Test func wellFormedTraceparentsAreKeptAndMalformedOnesIgnored() {
        #expect(Self.context(Self.parent)?.traceparent == Self.parent)
        #expect(Self.context("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-later") != nil, "a later version may add fields")
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // uppercase
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // version 00 has no more fields
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", // short
            "", "garbage",
        ] {
            #expect(Self.context(bad) == nil, "\(bad)")
        }
        #expect(Self.context(Self.parent, "vendor=a1,other=b2")?.tracestate == "vendor=a1,other=b2")
        #expect(Self.context(Self.parent, String(repeating: "x", count: 513))?.tracestate == nil, "an oversized tracestate is dropped")
        #expect(Self.context(Self.parent, "bad\nstate")?.tracestate == nil)
        let headers = [KafkaHeader(name: "traceparent", string: "junk"), KafkaHeader(name: "traceparent", string: Self.parent),
                       KafkaHeader(name: "tracestate", string: "k=v")]
        #expect(Pipeline.traceContext(of: headers) == Self.context(Self.parent, "k=v"), "the last traceparent wins")
        #expect(Pipeline.traceContext(of: [KafkaHeader(name: "tracestate", string: "k=v")]) == nil)
    }

    @Test("a task's trace context goes on with its solution, and with a dead letter")
    func outputsCarryTheInputsTraceContext() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .fixed(2)
        let harness = try await PipelineHarness(simulator: sim)
        let outputs = try harness.outputs()
        let (pipeline, run) = try harness.start(harness.configuration(group: "trace-group"))
        let tasks = harness.simulator.createTasks(count: 4, clientKey: PipelineHarness.goodKey)
        let headers = [KafkaHeader(name: "traceparent", string: Self.parent), KafkaHeader(name: "tracestate", string: "ezpoll=test")]
        try await harness.publish(tasks.map { PipelineHarness.event(taskId: $0) } + [(key: Array("bad".utf8), value: Array("not json".utf8))],
                                  headers: headers)
        try await harness.publish(harness.simulator.createTasks(count: 1, clientKey: PipelineHarness.goodKey).map { PipelineHarness.event(taskId: $0) })
        try await waitUntil("six outputs", timeout: 60) { outputs.count >= 6 }
        let traced = outputs.all.filter { $0.headers["traceparent"] != nil }
        #expect(traced.count == 5, "four solutions and the dead letter: \(outputs.all.map { ($0.topic, $0.headers) })")
        #expect(traced.allSatisfy { $0.headers["traceparent"] == Self.parent && $0.headers["tracestate"] == "ezpoll=test" })
        #expect(traced.contains { $0.topic == PipelineHarness.topics.deadLetters })
        #expect(outputs.all.filter { $0.headers["traceparent"] == nil }.count == 1, "a task without one gets none")
        pipeline.shutdown()
        try await run.value
        await outputs.close()
        await harness.shutdown()
    }
}
