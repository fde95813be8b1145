import Foundation
import NIOConcurrencyHelpers
import EmbeddedKafka
import Kafka
import Logging
import NIOPosix
import Poller
import Simulator
import TaskAPI

/// The parts of one bench run and the three measurements.
public final class BenchHarness: Sendable {
    let options: BenchOptions
    let logger: Logger
    let ledger: ThreadLedger
    let cluster: EmbeddedKafkaCluster
    let simulatorGroup: MultiThreadedEventLoopGroup
    let simulator: SimulatorServer
    let client: TaskResultClient
    let key: String
    let topics = Pipeline.Topics()
    /// What runs until `stop()`.
    private let running = NIOLockedValueBox<(services: PipelineServices?, collector: BenchCollector?)>((nil, nil))

    static let rest = "pipeline+bench"

    private init(options: BenchOptions, logger: Logger, ledger: ThreadLedger, cluster: EmbeddedKafkaCluster,
                 simulatorGroup: MultiThreadedEventLoopGroup, simulator: SimulatorServer, client: TaskResultClient, key: String) {
        self.options = options
        self.logger = logger
        self.ledger = ledger
        self.cluster = cluster
        self.simulatorGroup = simulatorGroup
        self.simulator = simulator
        self.client = client
        self.key = key
    }

    public static func start(options: BenchOptions, logger: Logger) async throws -> BenchHarness {
        let ledger = ThreadLedger()
        let cluster = try await ledger.attribute("cluster") { try EmbeddedKafkaCluster(brokers: 1, logger: logger) }
        let (group, simulator) = try await ledger.attribute("simulator") {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: options.simulatorThreads)
            var config = SimulatorConfig()
            config.timeScale = options.inFlightTarget != nil ? 1 : options.timeScale
            config.solveTime = .init(kind: .lognormal, median: options.solveMedian, sigma: options.solveSigma)
            return (group, try await SimulatorServer.start(config: config, group: group))
        }
        var clientConfig = TaskResultClient.Configuration()
        clientConfig.maxConnectionsPerHost = options.maxConnections ?? options.maxConcurrentCalls
        clientConfig.transport = options.httpTransport
        let client = try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: simulator.baseURL),
                                          configuration: clientConfig, logger: logger)
        return BenchHarness(options: options, logger: logger, ledger: ledger, cluster: cluster, simulatorGroup: group,
                            simulator: simulator, client: client, key: "bench-key-" + UUID().uuidString)
    }

    public func stop() async {
        let (services, collector) = running.withLockedValue { $0 }
        try? await services?.stop()
        await collector?.close()
        await client.shutdown()
        await simulator.stop()
        try? await simulatorGroup.shutdownGracefully()
        cluster.stop()
    }

    // MARK: Parts

    func createTopics(inputPartitions: Int) throws {
        try cluster.createTopic(topics.input, partitions: inputPartitions)
        for topic in [topics.solutions, topics.failures, topics.deadLetters] {
            try cluster.createTopic(topic, partitions: options.partitions)
        }
    }

    func startPipeline(timeScale: Double, maxInFlight: Int, rateLimit: Double, adaptive: Bool = true) throws -> (Pipeline, Pipeline.Configuration) {
        var settings = PipelineSettings(profile: client.profile, brokers: cluster.bootstrapServers)
        settings.groupID = "ezpoll-bench"
        settings.topics = topics
        settings.clientKey = ClientKey(key)
        settings.timeScale = timeScale
        settings.firstPollDelay = options.firstPollDelay.map { .seconds($0) }
        settings.pollInterval = options.pollInterval.map { .seconds($0) }
        settings.rateLimit = rateLimit
        settings.maxConcurrentCalls = options.maxConcurrentCalls
        // The bench sets the in-flight bound on purpose (the memory mode holds 200,000
        // tasks), past what `ezpoll run` would allow for the rate limit.
        settings.maxInFlight = maxInFlight
        settings.capInFlightToBudget = false
        settings.adaptiveInFlight = adaptive
        settings.kafkaProperties = options.kafkaProperties
        var configuration = settings.configuration
        configuration.consumer.fetchWaitMaxMs = 10
        let pipeline = try Pipeline(configuration: configuration, client: client, logger: logger)
        let services = PipelineServices(pipeline: pipeline, client: client, logger: logger)
        running.withLockedValue { $0.services = services }
        return (pipeline, configuration)
    }

    func makeProducer() throws -> KafkaProducer {
        var config = KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers)
        config.clientID = "ezpoll-bench-load"
        config.lingerMs = 5
        return try KafkaProducer(configuration: config, logger: logger)
    }

    func waitUntil(_ what: String, timeout: Duration, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw BenchError("bench: timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func settings(_ s: Pipeline.Configuration, rate: Double, duration: Double, warmup: Double, timeScale: Double,
                  inputPartitions: Int) -> BenchReport.Settings {
        BenchReport.Settings(rate: rate, durationSeconds: duration, warmupSeconds: warmup, timeScale: timeScale,
                             partitions: inputPartitions, maxConcurrentCalls: s.engine.maxConcurrentCalls,
                             httpConnections: client.configuration.maxConnectionsPerHost,
                             httpClient: client.configuration.transport.rawValue,
                             rateLimit: s.engine.rateLimit, maxInFlight: s.engine.maxInFlight,
                             pollIntervalMs: Double(s.engine.policy.interval.milliseconds),
                             firstPollDelayMs: Double(s.engine.policy.initialDelay.milliseconds),
                             solveMedianAPISeconds: options.solveMedian)
    }

    struct Sample {
        var at = ContinuousClock.now
        var cpu = ProcessMetrics.cpuSeconds()
        var threads: (components: [String: Double], names: [String: Double])
        var polls: Int
    }

    func sample(_ pipeline: Pipeline?) -> Sample {
        Sample(threads: ledger.sample(rest: Self.rest), polls: pipeline?.snapshot.polls ?? 0)
    }

    static func delta(_ a: [String: Double], _ b: [String: Double]) -> [String: Double] {
        var out: [String: Double] = [:]
        for (k, v) in b { out[k] = ((v - (a[k] ?? 0)) * 100).rounded() / 100 }
        return out
    }

    // MARK: Throughput

    public func throughput() async throws -> BenchReport {
        let c = options
        try createTopics(inputPartitions: c.partitions)
        var ceiling: RawHTTPCeiling.Result?
        var futureCeiling: RawHTTPCeiling.Result?
        if c.rawHttp {
            progress("measuring the raw HTTP ceiling (\(c.maxConcurrentCalls) at once, \(c.rawHttpSeconds) s)")
            ceiling = await RawHTTPCeiling.measure(client: client, simulator: simulator, key: ClientKey(key),
                                                   concurrency: c.maxConcurrentCalls, seconds: c.rawHttpSeconds)
            if c.rawHttpFuture {
                progress("measuring the EventLoopFuture HTTP path (\(c.maxConcurrentCalls) at once, \(c.rawHttpSeconds) s)")
                futureCeiling = await FutureHTTPCeiling.measure(profile: client.profile, configuration: client.configuration,
                                                                simulator: simulator, key: ClientKey(key),
                                                                concurrency: c.maxConcurrentCalls, seconds: c.rawHttpSeconds)
            }
            simulator.reset()
        }
        let book = BenchTaskBook()
        let collector = try BenchCollector(bootstrapServers: cluster.bootstrapServers, topics: topics, book: book, logger: logger)
        running.withLockedValue { $0.collector = collector }
        let (pipeline, settings) = try startPipeline(timeScale: c.timeScale, maxInFlight: c.maxInFlight, rateLimit: c.rateLimit)
        let producer = try makeProducer()
        progress("waiting for the consumer groups to form")
        try await waitUntil("partition assignment", timeout: .seconds(30)) {
            !pipeline.assignedPartitions.isEmpty && collector.isAssigned
        }
        let eventBytes = BenchLoadGenerator.event(taskId: UUID().uuidString, index: 1_000_000).count + 100
        let maxLag = c.partitions * 2 * 1_048_576 / eventBytes
        let generator = BenchLoadGenerator(simulator: simulator, producer: producer, topic: topics.input, rate: c.rate,
                                           timeScale: c.timeScale,
                                           solveTime: .init(kind: .lognormal, median: c.solveMedian, sigma: c.solveSigma),
                                           book: book, maxLag: maxLag, seed: c.seed,
                                           consumed: { pipeline.snapshot.recordsConsumed })
        let start = ContinuousClock.now
        let warmEnd = start + .milliseconds(Int64(c.warmup * 1000))
        let loadEnd = start + .milliseconds(Int64(c.duration * 1000))
        let samples = NIOLockedValueBox<(Sample?, Sample?)>((nil, nil))
        let sampler = Task {
            try? await Task.sleep(until: warmEnd, clock: .continuous)
            samples.withLockedValue { $0 = (self.sample(pipeline), nil) }
            try? await Task.sleep(until: loadEnd, clock: .continuous)
            let latest = self.sample(pipeline)
            samples.withLockedValue { $0.1 = latest }
        }
        let ticker = ProgressTicker { [book] elapsed in
            let snap = pipeline.snapshot
            return String(format: "%5.1fs  created %d  resolved %d  in flight %d  input lag %d  polls %d",
                          elapsed, book.createdCount, book.observedCount, pipeline.inFlight,
                          book.createdCount - snap.recordsConsumed, snap.polls)
        }
        let load = try await generator.run(until: loadEnd)
        await sampler.value
        try await producer.flush()
        await producer.close()
        // Drain: every created task should get its output.
        try await book.waitForOutputs(timeScale: c.timeScale)
        ticker.stop()
        let stats = simulator.stats()

        let (first, last) = samples.withLockedValue { $0 }
        guard let first, let last else { throw BenchError("bench: samples missing") }
        let window = (last.at - first.at).inSeconds
        let steady = book.observations(from: first.at, to: last.at)
        let all = book.allObservations()
        let resolvedRate = Double(steady.count) / window
        let solvedAll = all.filter { $0.topic == topics.solutions }.count
        let missing = book.pendingCount
        let keptUp = load.heldBack == 0 && load.offeredRate >= 0.97 * c.rate && resolvedRate >= 0.95 * load.offeredRate && missing == 0
        let throughput = BenchReport.Throughput(
            targetRate: c.rate, offeredRate: load.offeredRate, resolvedPerSecond: resolvedRate, steadyWindowSeconds: window,
            keptUp: keptUp, created: load.created, resolved: all.count, solved: solvedAll, failed: all.count - solvedAll,
            missing: missing, unexpectedOutputs: book.unexpectedCount, heldBackByBacklogGuard: load.heldBack, maxInputLag: load.maxLag)

        let polls = all.compactMap { $0.polls.map(Double.init) }.sorted()
        let pollsReport = BenchReport.Polls(mean: Percentile.mean(polls), p99: Percentile.of(polls, 0.99),
                                            simulatorMean: stats.callsPerTask.mean, simulatorP99: stats.callsPerTask.p99)
        let delays = steady.compactMap(\.detectionDelay).map { $0 * 1000 }.sorted()
        let added = steady.compactMap(\.addedLatency).map { $0 * 1000 }.sorted()
        let intervalMs = Double(settings.engine.policy.interval.milliseconds)
        let p99 = Percentile.of(delays, 0.99)
        let delay = BenchReport.Delay(
            p50Ms: Percentile.of(delays, 0.5), p99Ms: p99, maxMs: delays.last ?? 0, pollIntervalMs: intervalMs,
            p99MinusIntervalMs: p99 - intervalMs,
            p50APISeconds: Percentile.of(delays, 0.5) / 1000 * c.timeScale, p99APISeconds: p99 / 1000 * c.timeScale,
            pollDetectionP50Ms: stats.detectionDelay.p50 / c.timeScale * 1000,
            pollDetectionP99Ms: stats.detectionDelay.p99 / c.timeScale * 1000,
            addedP50Ms: Percentile.of(added, 0.5), addedP99Ms: Percentile.of(added, 0.99))

        let requestRate = Double(last.polls - first.polls) / window
        let http = BenchReport.HTTP(requestsPerSecond: requestRate, ceilingRequestsPerSecond: ceiling?.requestsPerSecond,
                                    shareOfCeiling: ceiling.map { requestRate / max($0.requestsPerSecond, 1) })
        let cpuWindow = last.cpu - first.cpu
        let components = Self.delta(first.threads.components, last.threads.components)
        let withoutParts = cpuWindow - (components["cluster"] ?? 0) - (components["simulator"] ?? 0)
        let perThousand = steady.isEmpty ? 0 : 1000 / Double(steady.count)
        let cpu = BenchReport.CPU(secondsPerThousandTasks: cpuWindow * perThousand,
                                  secondsPerThousandTasksWithoutClusterAndSimulator: withoutParts * perThousand,
                                  processCores: cpuWindow / window, byComponent: components,
                                  byThreadName: Self.delta(first.threads.names, last.threads.names))
        let memory = BenchReport.Memory(peakRSSMiB: Double(ProcessMetrics.peakRSSKiB) / 1024, rssMiB: Double(ProcessMetrics.rssKiB) / 1024)
        var report = BenchReport(mode: "throughput", processes: BenchOptions.processes, command: options.commandLine,
                                 settings: self.settings(settings, rate: c.rate, duration: c.duration, warmup: c.warmup,
                                                         timeScale: c.timeScale, inputPartitions: c.partitions),
                                 throughput: throughput, polls: pollsReport, detectionDelay: delay, http: http, cpu: cpu,
                                 memory: memory, rawHTTP: ceiling)
        report.rawHTTPFuture = futureCeiling
        if stats.errorResponses > 0 { report.notes.append("simulator error responses: \(stats.errorsByCode)") }
        return report
    }

    // MARK: Memory

    public func memory(target: Int) async throws -> BenchReport {
        let c = options
        let eventBytes = BenchLoadGenerator.event(taskId: UUID().uuidString, index: target).count + 100
        let inputPartitions = max(c.partitions, (target * eventBytes + 3 * 1_048_576 - 1) / (3 * 1_048_576))
        try createTopics(inputPartitions: inputPartitions)
        let book = BenchTaskBook()
        let producer = try makeProducer()
        let generator = BenchLoadGenerator(simulator: simulator, producer: producer, topic: topics.input, rate: 1, timeScale: 1,
                                           solveTime: .fixed(1e6), book: book, maxLag: .max, seed: c.seed, consumed: { 0 })
        progress("creating \(target) tasks that stay processing and publishing their events (\(inputPartitions) partitions)")
        var made = 0
        while made < target {
            let n = min(10_000, target - made)
            let tasks = generator.createTasks(n)
            try await generator.publish(tasks, firstIndex: made)
            made += n
        }
        try await producer.flush()
        await producer.close()
        try await Task.sleep(for: .seconds(1))
        let baseline = ProcessMetrics.rssKiB
        let peakReset = ProcessMetrics.resetPeakRSS()
        // A modest call rate: the point is the in-flight table, not the HTTP load.
        let (pipeline, settings) = try startPipeline(timeScale: 1, maxInFlight: target + 10_000, rateLimit: min(c.rateLimit, 1_000), adaptive: false)
        let ticker = ProgressTicker { elapsed in
            String(format: "%5.1fs  in flight %d / %d  consumed %d  RSS %.1f MiB", elapsed, pipeline.inFlight, target,
                   pipeline.snapshot.recordsConsumed, Double(ProcessMetrics.rssKiB) / 1024)
        }
        defer { ticker.stop() }
        try await waitUntil("\(target) tasks in flight", timeout: .seconds(120)) { pipeline.inFlight >= target }
        try await Task.sleep(for: .seconds(2))
        let reached = pipeline.inFlight
        let peak = ProcessMetrics.peakRSSKiB
        let now = ProcessMetrics.rssKiB
        ticker.stop()
        var report = BenchReport(
            mode: "memory", processes: BenchOptions.processes, command: options.commandLine,
            settings: self.settings(settings, rate: 0, duration: 0, warmup: 0, timeScale: 1, inputPartitions: inputPartitions),
            memory: BenchReport.Memory(
                peakRSSMiB: Double(peak) / 1024, rssMiB: Double(now) / 1024, inFlightTarget: target, inFlightReached: reached,
                baselineRSSMiB: Double(baseline) / 1024,
                peakRSSPerInFlightTaskBytes: Double(peak - baseline) * 1024 / Double(max(reached, 1)),
                rssPerInFlightTaskBytes: Double(now - baseline) * 1024 / Double(max(reached, 1))))
        report.notes.append("baseline = RSS after the simulator holds the tasks and the cluster holds their events, before the pipeline starts; the pipeline's fixed cost is counted against its tasks")
        if !peakReset { report.notes.append("could not reset VmHWM: the peak includes the setup") }
        return report
    }

    // MARK: Idle

    public func idle(seconds: Double) async throws -> BenchReport {
        try createTopics(inputPartitions: options.partitions)
        let (pipeline, settings) = try startPipeline(timeScale: options.timeScale, maxInFlight: options.maxInFlight,
                                                     rateLimit: options.rateLimit)
        progress("waiting for the pipeline to join its group")
        try await waitUntil("partition assignment", timeout: .seconds(30)) { !pipeline.assignedPartitions.isEmpty }
        try await Task.sleep(for: .seconds(3))
        progress("measuring \(seconds) s of idle CPU")
        let first = sample(pipeline)
        try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
        let last = sample(pipeline)
        let window = (last.at - first.at).inSeconds
        let components = Self.delta(first.threads.components, last.threads.components)
        let total = last.cpu - first.cpu
        let without = total - (components["cluster"] ?? 0) - (components["simulator"] ?? 0)
        return BenchReport(
            mode: "idle", processes: BenchOptions.processes, command: options.commandLine,
            settings: self.settings(settings, rate: 0, duration: seconds, warmup: 0, timeScale: options.timeScale,
                                    inputPartitions: options.partitions),
            memory: BenchReport.Memory(peakRSSMiB: Double(ProcessMetrics.peakRSSKiB) / 1024, rssMiB: Double(ProcessMetrics.rssKiB) / 1024),
            idle: BenchReport.Idle(seconds: window, processPercentOfCore: total / window * 100,
                                   withoutClusterAndSimulatorPercentOfCore: without / window * 100,
                                   byThreadName: Self.delta(first.threads.names, last.threads.names)))
    }

    func progress(_ line: String) {
        FileHandle.standardError.write(Data(("bench: " + line + "\n").utf8))
    }
}

/// Prints a progress line to stderr once a second (in place on a terminal).
final class ProgressTicker: Sendable {
    private let task: Task<Void, Never>
    private let stopped = NIOLockedValueBox(false)
    private let isTerminal = isatty(STDERR_FILENO) != 0

    init(_ line: @escaping @Sendable (Double) -> String) {
        let start = ContinuousClock.now
        let isTerminal = isatty(STDERR_FILENO) != 0
        task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                let text = line((ContinuousClock.now - start).inSeconds)
                FileHandle.standardError.write(Data((isTerminal ? "\r" + text + "\u{1B}[K" : text + "\n").utf8))
            }
        }
    }

    func stop() {
        guard stopped.withLockedValue({ stopped in defer { stopped = true }; return !stopped }) else { return }
        task.cancel()
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
