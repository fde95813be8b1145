import AsyncHTTPClient
import Foundation
import Kafka
import Logging
import NIOCore
import Poller
import TaskAPI

/// `ezpoll bench --separate-processes`: the pipeline as users deploy it. `ezpoll broker`,
/// `ezpoll simulate` and `ezpoll run` each run in a process of their own; this process
/// creates the tasks (the simulator's bulk `createTasks`), publishes their events at the
/// target rate and reads the outputs. The pipeline's CPU and memory are read from its
/// own `/proc/PID`, so they are its own (Kafka work included). With `wrk` installed the
/// simulator's ceiling is measured in the same run.
public struct SeparateProcessesBench {
    let options: BenchOptions
    let logger: Logger
    let executable: URL

    public init(options: BenchOptions, logger: Logger) {
        self.options = options
        self.logger = logger
        executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }

    public static let processes = "separate processes: ezpoll broker, ezpoll simulate, ezpoll run (measured), and the bench (load generator and output collector)"

    public func run() async throws -> BenchReport {
        let o = options
        let topics = Pipeline.Topics()
        let key = "bench-key-" + UUID().uuidString
        var children: [Child] = []
        defer { for child in children.reversed() { child.stop() } } // the pipeline first, the broker last

        progress("starting ezpoll broker and ezpoll simulate")
        let broker = try Child.start(executable, ["broker", "--log-level", "warning",
                                                  "--topic", "\(topics.input):\(o.partitions)",
                                                  "--topic", "\(topics.solutions):\(o.partitions)",
                                                  "--topic", "\(topics.failures):\(o.partitions)",
                                                  "--topic", "\(topics.deadLetters):\(o.partitions)"])
        children.append(broker)
        let brokers = try await broker.firstLine { $0.contains(":") }.trimmingCharacters(in: .whitespaces)
        var simArgs = ["simulate", "--time-scale", String(o.timeScale), "--median", String(o.solveMedian),
                       "--sigma", String(o.solveSigma), "--seed", String(o.seed), "--valid-key", key]
        let callbackPort = o.callbackLoss == nil ? nil : try await LoopbackPort.free()
        if let callbackPort, let loss = o.callbackLoss {
            simArgs += ["--callback-url", "http://127.0.0.1:\(callbackPort)/callbacks/\(ProviderProfile.ezCaptcha.name)",
                        "--callback-loss", String(loss), "--callback-delay", "0-\(o.callbackMaxDelay)"]
        }
        let simulator = try Child.start(executable, simArgs)
        children.append(simulator)
        let simLine = try await simulator.firstLine { $0.contains("listening on ") }
        guard let url = simLine.split(separator: " ").first(where: { $0.hasPrefix("http://") }).map(String.init) else {
            throw BenchError("ezpoll simulate did not say where it listens: \(simLine)")
        }

        progress("starting ezpoll run against \(brokers) and \(url)")
        var runArgs = ["run", "--brokers", brokers, "--api-url", url, "--group-id", "ezpoll-bench", "--time-scale", String(o.timeScale),
                       "--rate-limit", String(o.rateLimit), "--max-concurrent-calls", String(o.maxConcurrentCalls),
                       "--max-in-flight", String(o.maxInFlight), "--metrics-port", "0", "--log-level", "warning",
                       "--http-client", o.httpTransport.rawValue]
        if let interval = o.pollInterval { runArgs += ["--poll-interval", String(interval)] }
        if let first = o.firstPollDelay { runArgs += ["--first-poll-delay", String(first)] }
        for (name, value) in o.kafkaProperties.sorted(by: { $0.key < $1.key }) { runArgs += ["--kafka-config", "\(name)=\(value)"] }
        if let callbackPort { runArgs += ["--callback-port", String(callbackPort), "--callback-host", "127.0.0.1"] }
        let pipeline = try Child.start(executable, runArgs, environment: ["EZPOLL_CLIENT_KEY": key])
        children.append(pipeline)

        let http = HTTPClient.shared
        let book = BenchTaskBook()
        let collector = try BenchCollector(bootstrapServers: brokers, topics: topics, book: book, logger: logger)
        var producerConfig = KafkaProducerConfiguration(bootstrapServers: brokers)
        producerConfig.clientID = "ezpoll-bench-load"
        producerConfig.lingerMs = 5
        let producer = try KafkaProducer(configuration: producerConfig, logger: logger)

        // The pipeline works once a probe event (already expired: no call) comes back as a
        // failure; the input starts at the earliest offset, so it waits in Kafka meanwhile.
        progress("waiting for the pipeline to join its group")
        let probe = "probe-" + UUID().uuidString
        book.add([(probe, BenchTaskBook.Entry(created: ContinuousClock.now, ready: ContinuousClock.now))])
        try await producer.enqueue(KafkaOutgoingRecord(
            topic: topics.input, key: Array(probe.utf8),
            value: Array(#"{"taskId":"\#(probe)","createdAt":"2020-01-01T00:00:00Z"}"#.utf8))) { _ in }
        try await producer.flush()
        let joinDeadline = ContinuousClock.now + .seconds(60)
        while book.pendingCount > 0 {
            guard ContinuousClock.now < joinDeadline, pipeline.process.isRunning else {
                throw BenchError("the pipeline did not answer a probe event in 60 s")
            }
            try await Task.sleep(for: .milliseconds(100))
        }

        // Consumer lag as Kafka tools show it: events published minus the group's committed
        // offsets (a member of no group's rebalance: it never subscribes).
        let lagProbe = try KafkaConsumer(configuration: KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: "ezpoll-bench"),
                                         logger: logger)
        let inputPartitions = (0..<o.partitions).map { TopicPartition(topics.input, Int32($0)) }
        var maxLag = 0
        var nextLagSample = ContinuousClock.now

        let start = ContinuousClock.now
        let warmEnd = start + .milliseconds(Int64(o.warmup * 1000))
        let loadEnd = start + .milliseconds(Int64(o.duration * 1000))
        var created = 0
        var first: Sample?
        var last: Sample?
        var next = start
        progress(String(format: "creating %.0f tasks/s for %.0f s (warm-up %.0f s)", o.rate, o.duration, o.warmup))
        while ContinuousClock.now < loadEnd {
            let now = ContinuousClock.now
            if first == nil, now >= warmEnd { first = try await sample(pipeline, url, http) }
            if now >= nextLagSample {
                nextLagSample = now + .milliseconds(500)
                if let committed = try? await lagProbe.committedOffsets(for: inputPartitions, timeoutMs: 2_000) {
                    let done = committed.values.reduce(0) { $0 + Int($1 ?? 0) }
                    maxLag = max(maxLag, created + 1 - done) // + 1: the probe
                }
            }
            let due = Int(o.rate * (now - start).inSeconds) - created
            if due > 0 {
                let ids = try await createTasks(due, key: key, url: url, http: http)
                let entry = BenchTaskBook.Entry(created: ContinuousClock.now, ready: ContinuousClock.now)
                book.add(ids.map { ($0, entry) })
                for (offset, id) in ids.enumerated() {
                    try await producer.enqueue(KafkaOutgoingRecord(topic: topics.input, key: Array(id.utf8),
                                                                   value: BenchLoadGenerator.event(taskId: id, index: created + offset,
                                                                                                   callback: o.callbackLoss != nil))) { _ in }
                }
                created += ids.count
            }
            next = next + .milliseconds(10)
            if next > ContinuousClock.now { try await Task.sleep(until: next, clock: .continuous) } else { next = ContinuousClock.now }
        }
        last = try await sample(pipeline, url, http, detectedSince: first?.apiTime)
        await lagProbe.close()
        try await producer.flush()
        await producer.close()
        try await book.waitForOutputs(timeScale: o.timeScale)
        let drained = try await simulatorStats(url: url + "/stats", http: http)
        let ceiling = try await wrkCeiling(url: url, key: key, http: http)
        await collector.close()

        guard let first, let last else { throw BenchError("bench: samples missing (is --warmup below --duration?)") }
        let window = (last.at - first.at).inSeconds
        let steady = book.observations(from: first.at, to: last.at)
        let all = book.allObservations().dropFirst() // the probe
        let solved = all.filter { $0.topic == topics.solutions }.count
        let calls = last.calls - first.calls
        let cpu = last.cpu - first.cpu
        // The child `ezpoll run` polls with ez-captcha's profile unless told otherwise.
        let profile = ProviderProfile.ezCaptcha
        let interval = (o.pollInterval ?? profile.defaultPollInterval.inSeconds) * 1000 / o.timeScale
        let onSchedule = last.detectionP99 * 1000 / o.timeScale <= interval + 1000 / o.timeScale
        let keptUp = Double(steady.count) / window >= 0.95 * o.rate && book.pendingCount == 0
        var report = BenchReport(
            mode: "throughput", processes: Self.processes, command: o.commandLine,
            settings: .init(rate: o.rate, durationSeconds: o.duration, warmupSeconds: o.warmup, timeScale: o.timeScale,
                            partitions: o.partitions, maxConcurrentCalls: o.maxConcurrentCalls,
                            httpConnections: o.maxConnections ?? o.maxConcurrentCalls, httpClient: o.httpTransport.rawValue,
                            rateLimit: o.rateLimit, maxInFlight: o.maxInFlight, pollIntervalMs: interval,
                            firstPollDelayMs: (o.firstPollDelay ?? profile.initialDelay.inSeconds) * 1000 / o.timeScale, solveMedianAPISeconds: o.solveMedian),
            throughput: .init(targetRate: o.rate, offeredRate: Double(created) / o.duration,
                              resolvedPerSecond: Double(steady.count) / window, steadyWindowSeconds: window, keptUp: keptUp,
                              created: created, resolved: all.count, solved: solved, failed: all.count - solved,
                              missing: book.pendingCount, unexpectedOutputs: book.unexpectedCount,
                              heldBackByBacklogGuard: 0, maxInputLag: maxLag),
            http: .init(requestsPerSecond: Double(calls) / window, ceilingRequestsPerSecond: ceiling,
                        shareOfCeiling: ceiling.map { Double(calls) / window / max($0, 1) }),
            memory: .init(peakRSSMiB: Double(last.peakKiB) / 1024, rssMiB: Double(last.rssKiB) / 1024))
        report.pipelineProcess = .init(
            callsPerSecond: Double(calls) / window, cores: cpu / window,
            cpuMicrosecondsPerCall: calls > 0 ? cpu / Double(calls) * 1e6 : 0,
            rssMiB: Double(last.rssKiB) / 1024, peakRSSMiB: Double(last.peakKiB) / 1024,
            detectionP50APISeconds: last.detectionP50, detectionP99APISeconds: last.detectionP99, onSchedule: onSchedule)
        let polls = all.compactMap { $0.polls.map(Double.init) }.sorted()
        let simulatorPolls = drained["callsPerTask"] as? [String: Any]
        report.polls = .init(mean: Percentile.mean(polls), p99: Percentile.of(polls, 0.99),
                             simulatorMean: simulatorPolls?["mean"] as? Double ?? 0, simulatorP99: simulatorPolls?["p99"] as? Double ?? 0)
        if let loss = o.callbackLoss {
            let callbacks = drained["callbacks"] as? [String: Any] ?? [:]
            report.notes.append("callbacks: events say \"callback\": true, the simulator sends each task's callback 0-\(o.callbackMaxDelay) API s after it is done and loses \(Int(loss * 100)) % of them: \(callbacks["lost"] as? Int ?? 0) lost, \(callbacks["delivered"] as? Int ?? 0) delivered, \(callbacks["failed"] as? Int ?? 0) failed; safety polls at the run's defaults")
        }
        report.notes.append("no backlog guard here (nothing is held back); max lag: events published minus the group's committed offsets, sampled every 0.5 s: every record above the oldest unfinished one of its partition counts, so a slow task holds the lag up")
        report.notes.append("CPU and RSS are the `ezpoll run` process's own (/proc/PID), Kafka work included; calls are the simulator's getTaskResult count")
        report.notes.append("detection delay: the simulator's ready → first poll that saw it, for tasks seen ready in the steady window (after the warm-up), API seconds; on schedule = p99 ≤ poll interval + 1 s")
        if ceiling == nil { report.notes.append("no ceiling: `wrk` is not installed (apt-get install wrk)") }
        return report
    }

    // MARK: Parts

    struct Sample {
        var at: ContinuousClock.Instant
        var cpu: Double
        var rssKiB: Int
        var peakKiB: Int
        var calls: Int
        var detectionP50: Double
        var detectionP99: Double
        /// The simulator's API time.
        var apiTime: Double
    }

    /// `detectedSince`: the detection delay counts only tasks seen ready since then (API seconds).
    func sample(_ pipeline: Child, _ url: String, _ http: HTTPClient, detectedSince: Double? = nil) async throws -> Sample {
        let stats = try await simulatorStats(url: url + (detectedSince.map { "/stats?detectedSince=\($0)" } ?? "/stats"), http: http)
        let detection = stats["detectionDelay"] as? [String: Any]
        return Sample(at: ContinuousClock.now, cpu: pipeline.cpuSeconds() ?? 0, rssKiB: pipeline.statusKiB("VmRSS") ?? 0,
                      peakKiB: pipeline.statusKiB("VmHWM") ?? 0, calls: stats["getTaskResultCalls"] as? Int ?? 0,
                      detectionP50: detection?["p50"] as? Double ?? 0, detectionP99: detection?["p99"] as? Double ?? 0,
                      apiTime: stats["apiTime"] as? Double ?? 0)
    }

    func simulatorStats(url: String, http: HTTPClient) async throws -> [String: Any] {
        let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]) ?? [:]
    }

    func createTasks(_ count: Int, key: String, url: String, http: HTTPClient) async throws -> [String] {
        var request = HTTPClientRequest(url: url + "/createTasks")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: #"{"clientKey":"\#(key)","count":\#(count)}"#))
        let response = try await http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 64 << 20)
        let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        guard let ids = json?["taskIds"] as? [String] else { throw BenchError("createTasks answered \(String(decoding: body.readableBytesView.prefix(200), as: UTF8.self))") }
        return ids
    }

    /// `wrk` against the simulator's getTaskResult (one existing task), as many connections
    /// as the pipeline's concurrency; nil when wrk is not installed.
    func wrkCeiling(url: String, key: String, http: HTTPClient) async throws -> Double? {
        guard let wrk = ["/usr/bin/wrk", "/usr/local/bin/wrk"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return nil
        }
        let task = try await createTasks(1, key: key, url: url, http: http)[0]
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("ezpoll-wrk-\(UUID().uuidString).lua")
        try """
            wrk.method = "POST"
            wrk.body = '{"clientKey":"\(key)","taskId":"\(task)"}'
            wrk.headers["Content-Type"] = "application/json"
            """.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        progress("measuring the simulator's ceiling with wrk (\(o.maxConcurrentCalls) connections, \(Int(o.rawHttpSeconds)) s)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: wrk)
        process.arguments = ["-t1", "-c\(o.maxConcurrentCalls)", "-d\(max(1, Int(o.rawHttpSeconds)))s", "-s", script.path, url + "/getTaskResult"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }) else { return nil }
        return Double(line.dropFirst("Requests/sec:".count).trimmingCharacters(in: .whitespaces))
    }

    private var o: BenchOptions { options }

    func progress(_ line: String) {
        FileHandle.standardError.write(Data(("bench: " + line + "\n").utf8))
    }
}

/// A child process of the bench: its stdout lines, its /proc figures, SIGTERM on stop.
final class Child: Sendable {
    let process: Process
    private let lines: AsyncStream<String>

    private init(process: Process, lines: AsyncStream<String>) {
        self.process = process
        self.lines = lines
    }

    /// `stderr`: where the child's log goes (this process's stderr by default).
    static func start(_ executable: URL, _ arguments: [String], environment: [String: String] = [:],
                      stderr: FileHandle = .standardError) throws -> Child {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = stderr
        let (lines, sink) = AsyncStream.makeStream(of: String.self)
        let reader = out.fileHandleForReading
        Thread.detachNewThread {
            var pending = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    sink.yield(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...newline)
                }
            }
            sink.finish()
        }
        try process.run()
        return Child(process: process, lines: lines)
    }

    /// The first stdout line that `matches` (30 s at most).
    func firstLine(_ matches: @escaping @Sendable (String) -> Bool) async throws -> String {
        try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask { [lines] in
                for await line in lines where matches(line) { return line }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: .seconds(30))
                return nil
            }
            let line = try await group.next() ?? nil
            group.cancelAll()
            guard let line else { throw BenchError("\(process.arguments?.first ?? "child") printed no expected line in 30 s") }
            return line
        }
    }

    /// utime + stime of the process, seconds.
    func cpuSeconds() -> Double? { ProcessMetrics.cpuSeconds(process: process.processIdentifier) }

    func statusKiB(_ field: String) -> Int? { ProcessMetrics.statusKiB(field, process: String(process.processIdentifier)) }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
