import AsyncHTTPClient
import Foundation
import Kafka
import Logging
import NIOCore
import NIOPosix
import Poller
import Simulator
import TaskAPI

/// `ezpoll bench --hostile`: one `ezpoll run` process (its own, as deployed) against a
/// provider that misbehaves on purpose (`HostileProvider`, in this process), on
/// `ezpoll broker`. One task per misbehaviour misbehaves on its first poll only, one on
/// every poll; normal tasks go beside them and after them. It reports what a user who
/// doubts the provider asks: does every task end, is every solution right, does the key
/// stay out of outputs and logs, and how far does the process's memory grow.
public struct HostileRun {
    let options: BenchOptions
    let logger: Logger
    let executable: URL
    /// Normal tasks published with the hostile ones, and again after them.
    let normalTasks = 35

    public init(options: BenchOptions, logger: Logger) {
        self.options = options
        self.logger = logger
        executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }

    public struct Report: Sendable, Codable {
        public var command: String
        public var httpClient: String
        public var tasks: Int
        public var withoutOutcome: [String]
        public var normalSolved: Int
        public var normalTasks: Int
        public var onceSolved: Int
        public var onceTasks: Int
        public var alwaysFailed: Int
        public var alwaysTasks: Int
        public var wrongSolutions: [String]
        /// Tasks with more than one output (none expected: nothing restarted).
        public var repeated: [String]
        public var keyLeaks: [String]
        public var startRSSMiB: Double
        public var peakRSSMiB: Double
        public var peakGrowthMiB: Double
        public var endRSSMiB: Double
        public var bytesOffered: Int
        public var requests: Int
        public var callsInProgressAtEnd: Int?
        public var seconds: Double

        public var passed: Bool {
            withoutOutcome.isEmpty && wrongSolutions.isEmpty && repeated.isEmpty && keyLeaks.isEmpty && normalSolved == normalTasks
                && onceSolved == onceTasks && peakGrowthMiB <= 64 && callsInProgressAtEnd == 0
        }

        public var text: String {
            """
            hostile provider, --http-client \(httpClient) (\(String(format: "%.0f", seconds)) s): \(passed ? "PASSED" : "FAILED")
              tasks without an outcome: \(withoutOutcome.count) \(withoutOutcome.prefix(10))
              normal tasks solved: \(normalSolved)/\(normalTasks); misbehaving once, then solved: \(onceSolved)/\(onceTasks); \
            misbehaving always, ended as failures: \(alwaysFailed)/\(alwaysTasks)
              wrong solutions: \(wrongSolutions.count); tasks with more than one output: \(repeated.count); key leaks: \(keyLeaks.isEmpty ? "none" : keyLeaks.joined(separator: ", "))
              RSS: \(String(format: "%.1f", startRSSMiB)) MiB at start, peak \(String(format: "%.1f", peakRSSMiB)) (VmHWM, \
            growth \(String(format: "%.1f", peakGrowthMiB)) MiB), \(String(format: "%.1f", endRSSMiB)) at the end
              the provider sent \(bytesOffered >> 20) MiB in answer to \(requests) requests; calls in progress at the end: \
            \(callsInProgressAtEnd.map(String.init) ?? "?")
            """
        }
    }

    public func run() async throws -> Report {
        let started = ContinuousClock.now
        let topics = Pipeline.Topics()
        let key = "hostile-key-" + UUID().uuidString
        var children: [Child] = []
        defer { for child in children.reversed() { child.stop() } }

        progress("starting ezpoll broker and the hostile provider")
        let broker = try Child.start(executable, ["broker", "--log-level", "warning",
                                                  "--topic", "\(topics.input):4", "--topic", "\(topics.solutions):4",
                                                  "--topic", "\(topics.failures):4", "--topic", "\(topics.deadLetters):4"])
        children.append(broker)
        let brokers = try await broker.firstLine { $0.contains(":") }.trimmingCharacters(in: .whitespaces)
        let provider = try await HostileProvider.start()

        let logFile = FileManager.default.temporaryDirectory.appendingPathComponent("ezpoll-hostile-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: logFile) }
        let metricsPort = try await LoopbackPort.free()
        progress("starting ezpoll run --http-client \(options.httpTransport.rawValue) against \(provider.baseURL)")
        let pipeline = try Child.start(executable, [
            "run", "--brokers", brokers, "--api-url", provider.baseURL, "--group-id", "ezpoll-hostile",
            "--time-scale", String(options.timeScale), "--http-client", options.httpTransport.rawValue,
            "--metrics-port", String(metricsPort), "--metrics-host", "127.0.0.1", "--log-level", "info",
        ], environment: ["EZPOLL_CLIENT_KEY": key], stderr: try FileHandle(forWritingTo: logFile))
        children.append(pipeline)

        let outputs = try OutputRecords(bootstrapServers: brokers, topics: topics, groupID: "ezpoll-hostile-reader", logger: logger)
        var producerConfig = KafkaProducerConfiguration(bootstrapServers: brokers)
        producerConfig.clientID = "ezpoll-hostile-load"
        let producer = try KafkaProducer(configuration: producerConfig, logger: logger)
        func publish(_ ids: [String]) async throws {
            for (index, id) in ids.enumerated() {
                try await producer.enqueue(KafkaOutgoingRecord(topic: topics.input, key: Array(id.utf8),
                                                               value: BenchLoadGenerator.event(taskId: id, index: index))) { _ in }
            }
            try await producer.flush()
        }

        progress("waiting for the pipeline to join its group")
        let probe = "probe-" + UUID().uuidString
        try await producer.enqueue(KafkaOutgoingRecord(
            topic: topics.input, key: Array(probe.utf8),
            value: Array(#"{"taskId":"\#(probe)","createdAt":"2020-01-01T00:00:00Z"}"#.utf8))) { _ in }
        try await producer.flush()
        try await until("the pipeline answered a probe event", seconds: 60, pipeline) { outputs.contains(probe) }
        let startKiB = pipeline.statusKiB("VmRSS") ?? 0

        let modes = HostileProvider.Misbehaviour.allCases
        let once = modes.map { "\($0.rawValue).once.1" }
        let always = modes.map { "\($0.rawValue).always.1" }
        let beside = (1...normalTasks).map { "ok.\($0)" }
        let after = (normalTasks + 1...2 * normalTasks).map { "ok.\($0)" }
        progress("publishing \(once.count + always.count) misbehaving tasks and \(beside.count) normal ones, then \(after.count) more")
        try await publish(once + always + beside)
        try await Task.sleep(for: .seconds(5))
        try await publish(after)
        let all = once + always + beside + after
        var peakKiB = pipeline.statusKiB("VmHWM") ?? 0
        let deadline = ContinuousClock.now + .seconds(240)
        while !all.allSatisfy(outputs.contains), ContinuousClock.now < deadline, pipeline.process.isRunning {
            peakKiB = max(peakKiB, pipeline.statusKiB("VmHWM") ?? 0)
            try await Task.sleep(for: .milliseconds(250))
        }
        peakKiB = max(peakKiB, pipeline.statusKiB("VmHWM") ?? 0)
        let inProgress = try? await callsInProgress(port: metricsPort)
        let endKiB = pipeline.statusKiB("VmRSS") ?? 0
        pipeline.stop()
        try? await provider.stop()

        let seen = outputs.snapshot()
        await outputs.close()
        func solved(_ id: String) -> Bool { seen[id]?.first?.topic == topics.solutions }
        let wrong = seen.filter { id, records in
            records.contains { $0.topic == topics.solutions && !$0.value.contains("\"\(HostileProvider.solution(of: id))\"") }
        }
        let repeated = seen.filter { $0.value.count > 1 }.keys.sorted()
        var leaks: [String] = []
        if seen.values.joined().contains(where: { $0.value.contains(key) }) { leaks.append("an output record") }
        if (try? String(contentsOf: logFile, encoding: .utf8))?.contains(key) == true { leaks.append("the log") }
        if let metrics = try? await metricsText(port: metricsPort), metrics.contains(key) { leaks.append("/metrics") }
        return Report(
            command: "ezpoll bench --hostile --http-client \(options.httpTransport.rawValue) --time-scale \(options.timeScale)",
            httpClient: options.httpTransport.rawValue, tasks: all.count,
            withoutOutcome: all.filter { seen[$0] == nil },
            normalSolved: (beside + after).filter(solved).count, normalTasks: beside.count + after.count,
            onceSolved: once.filter(solved).count, onceTasks: once.count,
            alwaysFailed: always.filter { seen[$0]?.first?.topic == topics.failures }.count, alwaysTasks: always.count,
            wrongSolutions: wrong.keys.sorted(), repeated: repeated, keyLeaks: leaks,
            startRSSMiB: Double(startKiB) / 1024, peakRSSMiB: Double(peakKiB) / 1024,
            peakGrowthMiB: Double(peakKiB - startKiB) / 1024, endRSSMiB: Double(endKiB) / 1024,
            bytesOffered: provider.bytesSent, requests: provider.requests, callsInProgressAtEnd: inProgress,
            seconds: (ContinuousClock.now - started).inSeconds)
    }

    private func until(_ what: String, seconds: Int, _ pipeline: Child, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition() {
            guard ContinuousClock.now < deadline, pipeline.process.isRunning else { throw BenchError("not in \(seconds) s: \(what)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private func metricsText(port: Int) async throws -> String {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(10))
        return String(buffer: try await response.body.collect(upTo: 4 << 20))
    }

    private func callsInProgress(port: Int) async throws -> Int? {
        let text = try await metricsText(port: port)
        let line = text.split(separator: "\n").first { $0.hasPrefix(PipelineMetrics.Name.callsInProgress + " ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) }
    }

    private func progress(_ line: String) {
        FileHandle.standardError.write(Data(("bench: " + line + "\n").utf8))
    }
}
