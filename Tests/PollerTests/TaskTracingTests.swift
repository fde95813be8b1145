import Foundation
import Kafka
import NIOHTTP1
@testable import Poller
import Simulator
import Testing
import TestSupport

/// A span per task, exported by an `ezpoll run` process over OTLP/HTTP (JSON) to a
/// receiver on loopback: the input's `traceparent` is the span's parent, the output keeps
/// the trace id, and without the `OTEL_*` variables nothing is exported.
@Suite("Task spans over OTLP/HTTP", .serialized)
struct TaskTracingTests {
    static let traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let parentSpanId = "00f067aa0ba902b7"

    /// Every OTLP/HTTP trace export body received.
    final class Receiver: Sendable {
        let bodies = Locked<[[String: Any]]>([])
        let server: EndpointServer

        init() async throws {
            let bodies = bodies
            server = try await EndpointServer.start(host: "127.0.0.1", port: 0, limits: .init(maxBodyBytes: 16 << 20)) { request in
                guard request.method == .POST, request.uri.hasPrefix("/v1/traces") else { return .init(.notFound, text: "no\n") }
                if let json = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any] {
                    bodies.withLock { $0.append(json) }
                }
                return .init(.ok, contentType: "application/json", Array("{}".utf8))
            }
        }

        /// The spans received, flattened.
        var spans: [[String: Any]] {
            bodies.current.flatMap { body in
                (body["resourceSpans"] as? [[String: Any]] ?? []).flatMap { resource in
                    (resource["scopeSpans"] as? [[String: Any]] ?? []).flatMap { $0["spans"] as? [[String: Any]] ?? [] }
                }
            }
        }

        var serviceNames: Set<String> {
            Set(bodies.current.flatMap { body in
                (body["resourceSpans"] as? [[String: Any]] ?? []).compactMap { resource in
                    ((resource["resource"] as? [String: Any])?["attributes"] as? [[String: Any]])?
                        .first { $0["key"] as? String == "service.name" }.flatMap { Self.string($0["value"]) }
                }
            })
        }

        static func string(_ value: Any?) -> String? { (value as? [String: Any])?["stringValue"] as? String }

        /// An id as OTLP/JSON writes it (hex), or as protobuf JSON does (base64), in hex.
        static func hex(_ value: Any?) -> String? {
            guard let text = value as? String, !text.isEmpty else { return nil }
            if text.count % 2 == 0, text.allSatisfy(\.isHexDigit) { return text.lowercased() }
            return Data(base64Encoded: text).map { $0.map { String(format: "%02x", $0) }.joined() }
        }

        static func attribute(_ span: [String: Any], _ key: String) -> Any? {
            guard let value = (span["attributes"] as? [[String: Any]])?.first(where: { $0["key"] as? String == key })?["value"] as? [String: Any] else { return nil }
            return value["stringValue"] ?? value["intValue"] ?? value["doubleValue"]
        }
    }

    @Test("a record with a traceparent yields an ezpoll.task span under that trace, with a poll event each, and its output keeps the trace id")
    func eachTaskIsASpanUnderItsProducersTrace() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .fixed(8)
        let harness = try await PipelineHarness(simulator: sim)
        let receiver = try await Receiver()
        let outputs = try harness.outputs()
        let run = try ProcessTestRun("taskSpans", harness: harness, group: "trace-group")
        _ = try run.start(key: PipelineHarness.goodKey, environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(receiver.server.port)",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "ezpoll-test",
        ])
        let traced = harness.simulator.createTasks(count: 5, clientKey: PipelineHarness.goodKey)
        let untraced = harness.simulator.createTasks(count: 5, clientKey: PipelineHarness.goodKey)
        let traceparent = "00-\(Self.traceId)-\(Self.parentSpanId)-01"
        try await harness.publish(traced.map { PipelineHarness.event(taskId: $0) },
                                  headers: [KafkaHeader(name: "traceparent", string: traceparent), KafkaHeader(name: "tracestate", string: "shop=3")])
        try await harness.publish(untraced.map { PipelineHarness.event(taskId: $0) })
        let all = traced + untraced
        try await run.wait("every task has an output", timeout: 120, missing: { outputs.missing(all) }) { outputs.missing(all).isEmpty }
        try await run.wait("a span per task", timeout: 60) {
            Set(receiver.spans.compactMap { Receiver.attribute($0, "ezpoll.task_id") as? String }).isSuperset(of: all)
        }
        let spans = receiver.spans.filter { $0["name"] as? String == "ezpoll.task" }
        for taskId in traced {
            let span = try #require(spans.first { Receiver.attribute($0, "ezpoll.task_id") as? String == taskId })
            await run.check(Receiver.hex(span["traceId"]) == Self.traceId, "\(taskId): trace \(span["traceId"] ?? "none")")
            await run.check(Receiver.hex(span["parentSpanId"]) == Self.parentSpanId, "\(taskId): parent \(span["parentSpanId"] ?? "none")")
            await run.check(Receiver.attribute(span, "ezpoll.outcome") as? String == "solved", "\(taskId): \(span)")
            let polls = (span["events"] as? [[String: Any]] ?? []).filter { $0["name"] as? String == "poll" }
            await run.check(!polls.isEmpty, "\(taskId): no poll event")
            let output = try #require(outputs.all.first { $0.taskId == taskId })
            await run.check(output.headers["traceparent"]?.contains(Self.traceId) == true, "\(taskId): output headers \(output.headers)")
        }
        for taskId in untraced {
            let span = try #require(spans.first { Receiver.attribute($0, "ezpoll.task_id") as? String == taskId })
            await run.check(Receiver.hex(span["traceId"]) != Self.traceId && Receiver.hex(span["parentSpanId"]) == nil,
                            "\(taskId): a root span of its own")
        }
        await run.check(receiver.serviceNames == ["ezpoll-test"], "service names \(receiver.serviceNames)")
        run.finish()
        await receiver.server.stop()
        await outputs.close()
        await harness.shutdown()
    }

    @Test("without the OTEL_* variables the pipeline traces nothing")
    func offByDefault() {
        #expect(!TaskSpans.wanted(environment: [:]))
        #expect(TaskSpans.wanted(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]))
        #expect(TaskSpans.wanted(environment: ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"]))
        #expect(TaskSpans.wanted(environment: ["OTEL_TRACES_EXPORTER": "otlp"]))
        #expect(!TaskSpans.wanted(environment: ["OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]))
        #expect(!TaskSpans.wanted(environment: ["OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]))
    }
}
