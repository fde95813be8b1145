import AsyncHTTPClient
import Foundation
import Kafka
import NIOCore
@testable import Poller
@testable import PollerCore
import Simulator
import TaskAPI
import Testing
import TestSupport

@Suite("Observability: /metrics and /health over a real pipeline", .serialized)
struct ObservabilityTests {
    @Test("/metrics after a short run: every metric exists and the counters agree with what the run did")
    func metricsAfterRun() async throws {
        let harness = try await PipelineHarness()
        let good = harness.simulator.createTasks(count: 120, clientKey: PipelineHarness.goodKey)
        let expired = (0..<10).map { "expired-\($0)" }
        var records = good.map { PipelineHarness.event(taskId: $0) }
        records += expired.map { PipelineHarness.expiredEvent(taskId: $0) }
        records += (0..<10).map { (Array("bad-json-\($0)".utf8), Array("{not json".utf8)) }
        records += (0..<6).map { (Array("no-id-\($0)".utf8), Array(#"{"id":"x"}"#.utf8)) }
        records.shuffle()
        let total = records.count // 146

        let outputs = try harness.outputs(group: "obs-outputs")
        let observed = try await Observed.start(harness, harness.configuration(group: "obs-group"))
        let (pipeline, http) = (observed.pipeline, observed.http)
        try await waitUntil("ready before any input") { try await http.get("/health/ready").status == 200 }

        try await harness.publish(records)
        try await waitUntil("\(total) outputs") { outputs.count >= total }
        // Every output acknowledged and every offset stored: nothing in flight, no lag left.
        try await waitUntil("all acknowledged, lag 0 on 4 partitions") {
            let metrics = try await http.metrics()
            let lags = metrics.samples(PipelineMetrics.Name.watermarkLag)
            return pipeline.snapshot.acknowledged == total && lags.count == 4 && lags.allSatisfy { $0.value == 0 }
                && metrics[PipelineMetrics.Name.tasksInFlight] == 0
        }

        let metrics = try await http.metrics()
        let snapshot = pipeline.snapshot
        let stats = harness.simulator.stats()
        typealias N = PipelineMetrics.Name
        #expect(metrics[N.recordsConsumed] == Double(total))
        #expect(snapshot.recordsConsumed == total)
        #expect(metrics[N.deadLetters, ["reason": "invalid_json"]] == 10)
        #expect(metrics[N.deadLetters, ["reason": "missing_task_id"]] == 6)
        #expect(metrics[N.deadLetters, ["reason": "null_value"]] == 0, "every reason has a series, zero included")
        // What the run did, read from the output topics. On a loaded machine some solvable
        // tasks may expire (the harness runs the API clock 50x), so the metrics are compared
        // with the outputs rather than with a fixed split.
        let all = outputs.all
        let onTopic = Dictionary(grouping: all, by: \.topic).mapValues { Double($0.count) }
        let failuresByReason = Dictionary(grouping: all.filter { $0.topic == "captcha.failures" }) {
            $0.json["reason"] as? String ?? "?"
        }.mapValues { Double($0.count) }
        let solved = onTopic["captcha.solutions"] ?? 0
        let failed = onTopic["captcha.failures"] ?? 0
        #expect(solved + failed == 130 && onTopic["captcha.tasks.dlq"] == 16)
        #expect(metrics[N.tasksSolved] == solved)
        for reason in FailureReason.allCases {
            #expect(metrics[N.taskFailures, ["reason": reason.rawValue]] == failuresByReason[reason.rawValue] ?? 0, "\(reason)")
        }
        #expect((failuresByReason["expired"] ?? 0) >= 10, "the 10 events created in 2020")
        for topic in ["captcha.solutions", "captcha.failures", "captcha.tasks.dlq"] {
            #expect(metrics[N.resultsPublished, ["topic": topic]] == onTopic[topic], "\(topic)")
        }
        #expect(metrics.samples(N.publishErrors).allSatisfy { $0.value == 0 })

        // Polls: the metric, the pipeline's own count and the simulator's count agree.
        let polls = metrics.samples(N.polls).reduce(0) { $0 + $1.value }
        #expect(polls > 0)
        #expect(polls == Double(snapshot.polls))
        #expect(polls == Double(stats.getTaskResultCalls))
        #expect(metrics[N.polls, ["outcome": "ready"]] == solved, "one ready answer per solution")
        #expect(metrics[N.polls, ["outcome": "ready"]] == Double(stats.readyResponses))
        let timed = metrics.samples(N.httpRequestDuration + "_count").reduce(0) { $0 + $1.value }
        #expect(timed == polls, "one duration per call")
        for outcome in PipelineMetrics.OutcomeClass.allCases {
            let count = metrics[N.httpRequestDuration + "_count", ["outcome": outcome.rawValue]]
            #expect(count == metrics[N.polls, ["outcome": outcome.rawValue]], "\(outcome)")
            #expect(metrics[N.httpRequestDuration + "_bucket", ["outcome": outcome.rawValue, "le": "+Inf"]] == count)
        }
        #expect(metrics[N.creationToResult + "_count", ["result": "solved"]] == solved)
        #expect(metrics[N.creationToResult + "_count", ["result": "failed"]] == failed)

        // State gauges.
        #expect(metrics[N.tasksInFlight] == 0)
        #expect(metrics[N.callsInProgress] == 0)
        #expect(metrics[N.inputPaused] == 0)
        #expect(metrics[N.pausedPartitions] == 0)
        #expect(metrics[N.assignedPartitions] == 4)
        #expect(metrics[N.ipBanActive] == 0)
        #expect(metrics[N.ipBans] == 0)
        #expect(metrics[N.accountsDisabled] == 0)
        #expect((metrics[N.pollSlowdown] ?? 0) >= 1)
        #expect(metrics[N.brokersDown] == 0)
        #expect(metrics[N.ready] == 1)
        let consumedEnds = metrics.samples(N.consumedOffset).reduce(0) { $0 + $1.value }
        #expect(consumedEnds == Double(total), "consumed offsets of the 4 partitions add up to the input")
        #expect(!metrics.text.contains(PipelineHarness.goodKey), "no clientKey in any metric")

        let live = try await http.get("/health/live")
        #expect(live.status == 200 && live.body.contains(#""status":"live""#))
        #expect(try await http.get("/nope").status == 404)

        try await observed.stopPipeline()
        let after = try await http.get("/health/ready")
        #expect(after.status == 503 && after.body.contains("shutting down"), "not ready once stopped: \(after.body)")
        await observed.server.stop()
        await outputs.close()
        await harness.shutdown()
    }

    @Test("/health/ready answers 503 while the provider's IP ban pauses calls, and 200 again after it")
    func readyFlipsDuringBan() async throws {
        let harness = try await PipelineHarness()
        var config = harness.configuration(group: "obs-ban-group")
        config.engine.banDuration = .seconds(2) // long enough to observe, no timing asserted
        let outputs = try harness.outputs(group: "obs-ban-outputs")
        let observed = try await Observed.start(harness, config)
        let http = observed.http
        try await waitUntil("ready before the ban") { try await http.get("/health/ready").status == 200 }

        // The provider starts banning: more than 5 error answers within its window. Unknown
        // task ids provoke them (the 6th bans); the real tasks wait out the pause.
        try harness.simulator.updateConfig { $0.ban = .init(maxErrors: 5, window: 300, duration: 30) }
        // Tasks still processing when the ban starts are polled during it (five of them
        // certainly: they need 100 API s), so ezpoll meets ERROR_IP_BANNED.
        let tasks = harness.simulator.createTasks(count: 55, clientKey: PipelineHarness.goodKey)
            + (0..<5).map { _ in harness.simulator.createTask(solveTime: 100) }
        let provokers = (0..<6).map { "unknown-\($0)" }
        try await harness.publish(provokers.map { PipelineHarness.event(taskId: $0) } + tasks.map { PipelineHarness.event(taskId: $0) })
        var during: (status: Int, body: String) = (0, "")
        do {
            try await waitUntil("not ready during the ban") {
                during = try await http.get("/health/ready")
                return during.status == 503
            }
        } catch {
            let stats = harness.simulator.stats()
            print("ban not observed: simulator bans \(stats.bansTriggered), banned answers \(stats.bannedResponses), errors \(stats.errorsByCode); metrics:\n\(try await http.metrics().text)")
            throw error
        }
        #expect(during.body.contains("ERROR_IP_BANNED") && during.body.contains(#""banned":true"#), "\(during.body)")
        let metricsDuring = try await http.metrics()
        #expect(metricsDuring[PipelineMetrics.Name.ipBans] == 1)
        #expect(metricsDuring[PipelineMetrics.Name.polls, ["outcome": "ip_banned"]] ?? 0 >= 1)
        #expect(try await http.get("/health/live").status == 200, "banned is not dead")

        try await waitUntil("ready again after the ban") { try await http.get("/health/ready").status == 200 }
        try await waitUntil("66 outputs", timeout: 120) { outputs.count >= 66 }
        let metricsAfter = try await http.metrics()
        #expect(metricsAfter[PipelineMetrics.Name.ipBanActive] == 0)
        // Every task ended once (a task whose window closed during the pause fails as
        // expired: how many depends on the machine's speed, so it is not asserted).
        let ended = (metricsAfter[PipelineMetrics.Name.tasksSolved] ?? 0)
            + metricsAfter.samples(PipelineMetrics.Name.taskFailures).reduce(0) { $0 + $1.value }
        #expect(ended == 66)
        #expect(metricsAfter[PipelineMetrics.Name.taskFailures, ["reason": "task_not_found"]] == 6, "the provokers")
        #expect(harness.simulator.stats().bansTriggered == 1)
        #expect(metricsAfter[PipelineMetrics.Name.ipBans] == 1, "one ban period, however many answers extended it")

        try await observed.stop()
        await outputs.close()
        await harness.shutdown()
    }

    @Test("/health/ready answers 503 while every broker is down, and recovers when one is back")
    func readyFlipsWhenBrokersDown() async throws {
        let harness = try await PipelineHarness()
        let observed = try await Observed.start(harness, harness.configuration(group: "obs-broker-group"))
        let (pipeline, http) = (observed.pipeline, observed.http)
        try await waitUntil("assigned and ready") {
            try await http.get("/health/ready").status == 200 && !pipeline.assignedPartitions.isEmpty
        }
        try harness.cluster.setBrokerDown(1)
        var down: (status: Int, body: String) = (0, "")
        try await waitUntil("not ready with the broker down") {
            down = try await http.get("/health/ready")
            return down.status == 503
        }
        #expect(down.body.contains("all brokers down"), "\(down.body)")
        #expect(try await http.metrics()[PipelineMetrics.Name.brokersDown] == 1)
        try harness.cluster.setBrokerUp(1)
        try await waitUntil("ready again with the broker up") { try await http.get("/health/ready").status == 200 }
        try await observed.stop()
        await harness.shutdown()
    }

    @Test("the first scrape declares every ezpoll metric with # HELP and # TYPE, with build info and process metrics")
    func firstScrape() throws {
        let text = String(decoding: PipelineMetrics().exposition(), as: UTF8.self)
        let lines = text.split(separator: "\n").map(String.init)
        let names = PipelineMetrics.help.map(\.name)
        for name in names {
            #expect(lines.contains { $0.hasPrefix("# HELP \(name) ") }, "no HELP for \(name)")
            #expect(lines.contains { $0.hasPrefix("# TYPE \(name) ") }, "no TYPE for \(name)")
            #expect(lines.filter { $0.hasPrefix("# TYPE \(name) ") }.count == 1, "\(name) declared twice")
        }
        #expect(lines.contains("ezpoll_build_info{version=\"\(EzpollVersion.string)\"} 1"))
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"] {
            let sample = lines.first { $0.hasPrefix(name + " ") }
            let value = sample.flatMap { Double($0.split(separator: " ").last ?? "") }
            #expect((value ?? -1) >= 0, "\(name): \(sample ?? "absent")")
        }
        // Every metric the README documents is declared.
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let documented = Set(readme.matches(of: #/`(ezpoll_[a-z_]+)`/#).map { String($0.output.1) })
        #expect(documented.count >= 20)
        for name in documented.sorted() {
            #expect(lines.contains { $0.hasPrefix("# TYPE \(name) ") }, "documented \(name) not declared at startup")
        }
    }

    @Test("readiness rules on values: banned, brokers down, starting, stopping, fatal")
    func healthRules() {
        let now = Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
        var health = PipelineHealth(lifecycle: .running, assignedPartitions: 0, kafka: .init(), bannedUntil: nil)
        #expect(health.isReady && health.isLive && health.assignment == "waiting", "waiting for an assignment is ready")
        health.assignedPartitions = 3
        #expect(health.isReady && health.assignment == "assigned")
        health.bannedUntil = now + .seconds(60)
        #expect(!health.isReady && health.isLive)
        #expect(health.json().contains(#""status":"not_ready""#))
        health.bannedUntil = nil
        health.kafka.brokersDown = true
        #expect(!health.isReady && health.notReadyReasons == ["all brokers down"])
        health.kafka.brokersDown = false
        health.lifecycle = .starting
        #expect(!health.isReady)
        health.lifecycle = .stopping
        #expect(!health.isReady)
        health.lifecycle = .running
        health.kafka.fatalError = "fenced \"producer\""
        #expect(!health.isLive && !health.isReady)
        #expect(health.json(liveness: true).contains(#""status":"failed""#))
        #expect(health.json().contains(#"fenced \"producer\""#), "reasons are JSON-escaped")
    }
}

/// A harness pipeline with its observability server on a loopback port.
struct Observed {
    let pipeline: Pipeline
    let run: Task<Void, Error>
    let server: ObservabilityServer
    var http: HTTPProbe { HTTPProbe(base: server.baseURL) }

    static func start(_ harness: PipelineHarness, _ configuration: Pipeline.Configuration) async throws -> Observed {
        let (pipeline, run) = try harness.start(configuration)
        let server = try await ObservabilityServer.start(source: pipeline, host: "127.0.0.1", port: 0, logger: harness.logger)
        return Observed(pipeline: pipeline, run: run, server: server)
    }

    func stopPipeline() async throws {
        pipeline.shutdown()
        try await run.value
    }

    func stop() async throws {
        try await stopPipeline()
        await server.stop()
    }
}

/// GETs against the observability port (loopback only).
struct HTTPProbe {
    var base: String

    func get(_ path: String) async throws -> (status: Int, body: String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + path), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    func metrics() async throws -> PrometheusText {
        let (status, body) = try await get("/metrics")
        #expect(status == 200)
        return PrometheusText(body)
    }
}

/// A parsed Prometheus text exposition: samples by name and labels.
struct PrometheusText {
    struct Sample { var name: String; var labels: [String: String]; var value: Double }
    let text: String
    let all: [Sample]

    init(_ text: String) {
        self.text = text
        var samples: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            var labels: [String: String] = [:]
            var name = String(series)
            if let open = series.firstIndex(of: "{"), series.hasSuffix("}") {
                name = String(series[..<open])
                let inner = series[series.index(after: open)..<series.index(before: series.endIndex)]
                // Label values here never contain `",` (reason codes, topics, numbers).
                for pair in inner.split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
            }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
        all = samples
    }

    func samples(_ name: String) -> [Sample] { all.filter { $0.name == name } }

    subscript(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        all.first { $0.name == name && $0.labels == labels }?.value
    }
}
