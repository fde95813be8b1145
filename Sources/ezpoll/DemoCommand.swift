import ArgumentParser
import Bench
import Foundation
import EmbeddedKafka
import Kafka
import Logging
import NIOConcurrencyHelpers
import Poller
import Simulator
import TaskAPI

/// `ezpoll demo`: the README's main job. Everything in one process, nothing to
/// install: the embedded Kafka cluster, the simulator on a loopback port, the real
/// pipeline between them, and a checker that reads the output topics and verifies
/// every task got exactly one output.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run ezpoll end to end on an embedded Kafka cluster and the API simulator."
    )

    @Option(help: "Number of tasks.")
    var tasks: Int = 2_000
    @Option(help: "Tasks created (and their events published) per second, once the pipeline owns its partitions.")
    var rate: Double = 200
    @Option(help: "Simulated API seconds per real second (the pipeline's policy is scaled alike).")
    var timeScale: Double = 20
    @Option(help: "Partitions of the input topic.")
    var partitions: Int = 4
    @Option(help: "Share of tasks the simulator declares unsolvable.")
    var unsolvable: Double = 0.05
    @Option(help: "Share of tasks whose events name an invalid clientKey (account errors).")
    var badKeys: Double = 0.02
    @Option(help: "Share of events already expired when they arrive.")
    var expired: Double = 0.02
    @Option(help: "Share of input records that are not valid task events (dead letters).")
    var badRecords: Double = 0.01
    @Option(help: "Probability of a transient API error (HTTP 500/503/429, malformed JSON) per call.")
    var apiErrors: Double = 0.02
    @Option(help: "Share of tasks created with a callbackUrl to the pipeline's callback receiver (their events say \"callback\": true); the simulator loses 10 % of the callbacks, sends 10 % twice and forges an early one for 5 % of those tasks.")
    var callbacks: Double = 0.5
    @Option(help: "Random seed of the simulator.")
    var seed: UInt64 = 1
    @Option(help: "Log level of the pipeline.")
    var logLevel: String = "warning"

    func validate() throws {
        guard tasks >= 1 else { throw ValidationError("--tasks must be at least 1") }
        guard partitions >= 1 else { throw ValidationError("--partitions must be at least 1") }
        guard timeScale > 0 else { throw ValidationError("--time-scale must be > 0") }
        guard rate > 0, rate.isFinite else { throw ValidationError("--rate must be > 0 tasks per second") }
        for (name, value) in [("unsolvable", unsolvable), ("bad-keys", badKeys), ("expired", expired),
                              ("bad-records", badRecords), ("api-errors", apiErrors), ("callbacks", callbacks)] where !(0...1).contains(value) {
            throw ValidationError("--\(name) must be between 0 and 1")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    func run() async throws {
        var logger = Logger(label: "ezpoll.demo")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        let started = ContinuousClock.now
        let demoKey = "demo-key-" + UUID().uuidString

        // The parts.
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: logger)
        defer { cluster.stop() }
        let topics = Pipeline.Topics()
        try cluster.createTopic(topics.input, partitions: partitions)
        for topic in [topics.solutions, topics.failures, topics.deadLetters] { try cluster.createTopic(topic, partitions: partitions) }
        var sim = SimulatorConfig()
        sim.timeScale = timeScale
        sim.seed = seed
        sim.validKeys = [demoKey]
        sim.unsolvableFraction = unsolvable
        sim.faults.http500Probability = apiErrors / 4
        sim.faults.http503Probability = apiErrors / 4
        sim.faults.http429Probability = apiErrors / 4
        sim.faults.malformedProbability = apiErrors / 4
        (sim.callbacks.lossProbability, sim.callbacks.duplicateProbability, sim.callbacks.forgedProbability) = (0.1, 0.1, 0.05)
        sim.callbacks.maxDelay = 0.5
        let simulator = try await SimulatorServer.start(config: sim)
        let client = try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: simulator.baseURL), logger: logger)
        print("embedded Kafka at \(cluster.bootstrapServers); simulator at \(simulator.baseURL) (time scale \(timeScale)x)")

        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger)

        // The pipeline, with its policy on the simulator's clock.
        var settings = PipelineSettings(profile: client.profile, brokers: cluster.bootstrapServers)
        settings.groupID = "ezpoll-demo"
        settings.topics = topics
        settings.clientKey = ClientKey(demoKey)
        settings.timeScale = timeScale
        settings.rateLimit = 5_000
        var configuration = settings.configuration
        configuration.consumer.fetchWaitMaxMs = 10
        if callbacks > 0 { configuration.engine.callbacks = settings.scaledCallbackSchedule }
        let pipeline = try Pipeline(configuration: configuration, client: client, logger: logger)
        let services = PipelineServices(pipeline: pipeline, client: client, logger: logger)
        // Provider callbacks, as `ezpoll run --callback-port` takes them, behind a token.
        let token = "demo-token-" + UUID().uuidString.prefix(8)
        let receiver = callbacks > 0
            ? try await CallbackReceiver.start(.init(host: "127.0.0.1", port: 0, token: String(token)), pipeline: pipeline, logger: logger) : nil
        let callbackUrl = receiver.map { "http://127.0.0.1:\($0.port)/callbacks/\(client.profile.name)/\(token)" }

        // The checker.
        let checker = try OutputChecker(bootstrapServers: cluster.bootstrapServers, topics: topics, logger: logger)

        // The input, as production sees it: once the pipeline owns its partitions (a group
        // join takes seconds), tasks are created at a steady rate and each task's event is
        // published as it is created, with some bad records among them. Creating them all
        // up front would measure the join, not the polling.
        let joinDeadline = ContinuousClock.now + .seconds(60)
        while pipeline.assignedPartitions.count < partitions && ContinuousClock.now < joinDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        var input = Input()
        var rng = SystemRandomNumberGenerator()
        let publishStart = ContinuousClock.now
        let tick = max(1, Int(rate / 20)) // 20 batches a second
        for first in stride(from: 0, to: tasks, by: tick) {
            let due = publishStart + .milliseconds(Int64(Double(first) / rate * 1_000))
            if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
            let count = min(tick, tasks - first)
            let told = Int((Double(count) * callbacks).rounded())
            let withCallbacks = simulator.createTasks(count: told, clientKey: demoKey, callbackUrl: callbackUrl)
            let ids = withCallbacks + simulator.createTasks(count: count - told, clientKey: demoKey)
            input.expectingCallbacks.formUnion(withCallbacks)
            let added = input.records.count
            addRecords(for: ids, firstIndex: first, to: &input, using: &rng)
            for record in input.records[added...] {
                try await producer.enqueue(KafkaOutgoingRecord(topic: topics.input, key: record.key, value: record.value)) { _ in }
            }
        }
        try await producer.flush()
        await producer.close()

        let expected = input.records.count
        let progress = Progress(total: expected, polls: pipeline.snapshot.polls)
        let deadline = ContinuousClock.now + .seconds(max(120, 600 / timeScale))
        while checker.count < expected && ContinuousClock.now < deadline {
            let counters = pipeline.snapshot
            progress.show(done: checker.count, solved: counters.solved, failed: counters.failedTotal,
                          deadLetters: counters.deadLetterTotal, inFlight: pipeline.inFlight,
                          polls: counters.polls, elapsed: ContinuousClock.now - started)
            try await Task.sleep(for: .milliseconds(250))
        }
        progress.finish()
        await receiver?.stop()
        try await services.stop()
        try await Task.sleep(for: .milliseconds(300)) // let the checker read any duplicate
        await checker.close()
        let stats = simulator.stats()
        await simulator.stop()

        let elapsed = ContinuousClock.now - started
        let report = checker.report(expected: input)
        var extra: [(String, String)] = []
        if callbacks > 0 {
            let (told, asked) = checker.meanPolls(splitBy: input.expectingCallbacks)
            let sent = stats.callbacks
            extra.append(("callbacks sent/lost/twice/forged", "\(sent.delivered + sent.failed) / \(sent.lost) / \(sent.duplicated) / \(sent.forged)"))
            extra.append(("polls/solution, callback/polling", String(format: "%.2f / %.2f", told, asked)))
        }
        print(report.table(counters: pipeline.snapshot, stats: stats, elapsed: elapsed, timeScale: timeScale, extra: extra))
        guard report.isComplete else {
            print("FAILED: \(report.missing.count) records without an output, \(report.duplicates) duplicates")
            throw ExitCode(1)
        }
        print("ok: every one of the \(expected) input records got exactly one output")
    }

    struct Input {
        var records: [(key: [UInt8]?, value: [UInt8]?)] = []
        /// Record key (taskId, or "bad-N" for bad records) -> expected topic.
        var expectedTopic: [String: String] = [:]
        /// Tasks created with a callbackUrl.
        var expectingCallbacks: Set<String> = []
    }

    /// Events for tasks just created (`firstIndex` numbers them), and some bad records among them.
    private func addRecords(for ids: [String], firstIndex: Int, to input: inout Input, using rng: inout SystemRandomNumberGenerator) {
        let topics = Pipeline.Topics()
        for (offset, id) in ids.enumerated() {
            let i = firstIndex + offset
            let draw = Double.random(in: 0..<1, using: &rng)
            var event = #"{"taskId":"\#(id)","correlationId":"demo-\#(i)","taskType":"ReCaptchaV2TaskProxyless""#
            if input.expectingCallbacks.contains(id) { event += #","callback":true"# }
            if draw < badKeys {
                event += #","clientKey":"not-a-valid-key""#
                input.expectedTopic[id] = topics.failures
            } else if draw < badKeys + expired {
                event += #","createdAt":"2020-01-01T00:00:00Z""#
                input.expectedTopic[id] = topics.failures
            } else {
                event += #","createdAt":"\#(WallClock.now().rfc3339)""# // as a producer should: the window counts from here
                input.expectedTopic[id] = "solution-or-failure"
            }
            input.records.append((Array(id.utf8), Array((event + "}").utf8)))
            if Double.random(in: 0..<1, using: &rng) < badRecords {
                let badKey = "bad-\(i)"
                input.records.append((Array(badKey.utf8), Array(#"{"taskId": oops"#.utf8)))
                input.expectedTopic[badKey] = topics.deadLetters
            }
        }
    }
}

/// Checks the outputs against what the demo published.
struct OutputChecker {
    let records: OutputRecords

    init(bootstrapServers: String, topics: Pipeline.Topics, logger: Logger) throws {
        records = try OutputRecords(bootstrapServers: bootstrapServers, topics: topics, groupID: "ezpoll-demo-checker", logger: logger)
    }

    var count: Int { records.count }

    func close() async {
        await records.close()
    }

    struct Report {
        var missing: [String] = []
        var duplicates = 0
        var wrongTopic = 0
        var isComplete: Bool { missing.isEmpty && duplicates == 0 && wrongTopic == 0 }
    }

    /// Mean `polls` of the solutions of tasks in `told`, and of the others.
    func meanPolls(splitBy told: Set<String>) -> (told: Double, others: Double) {
        var sums = (told: (0, 0), others: (0, 0))
        for (key, outputs) in records.snapshot() {
            guard let solution = outputs.first(where: { $0.topic == Pipeline.Topics().solutions }),
                  let object = try? JSONSerialization.jsonObject(with: Data(solution.value.utf8)) as? [String: Any],
                  let polls = object["polls"] as? Int else { continue }
            if told.contains(key) { sums.told = (sums.told.0 + polls, sums.told.1 + 1) } else { sums.others = (sums.others.0 + polls, sums.others.1 + 1) }
        }
        return (Double(sums.told.0) / Double(max(1, sums.told.1)), Double(sums.others.0) / Double(max(1, sums.others.1)))
    }

    func report(expected: DemoCommand.Input) -> Report {
        let outputs = records.snapshot()
        var report = Report()
        for (key, topic) in expected.expectedTopic {
            guard let seen = outputs[key] else {
                report.missing.append(key)
                continue
            }
            report.duplicates += seen.count - 1
            if topic != "solution-or-failure" && seen.first?.topic != topic { report.wrongTopic += 1 }
        }
        return report
    }
}

extension OutputChecker.Report {
    func table(counters: PipelineCounters.Snapshot, stats: SimulatorStats, elapsed: Duration, timeScale: Double,
               extra: [(String, String)] = []) -> String {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var rows: [(String, String)] = [
            ("records in", "\(counters.recordsConsumed)"),
            ("solved", "\(counters.solved)"),
        ]
        for (reason, n) in counters.failed.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            rows.append(("failed: \(reason.rawValue)", "\(n)"))
        }
        for (code, n) in counters.deadLetters.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            rows.append(("dead letter: \(code.rawValue)", "\(n)"))
        }
        rows += [
            ("missing / duplicated outputs", "\(missing.count) / \(duplicates)"),
            ("getTaskResult calls", "\(stats.getTaskResultCalls)"),
            ("polls per polled task (mean / p99)", String(format: "%.2f / %.0f", stats.callsPerTask.mean, stats.callsPerTask.p99)),
            ("detection delay p50 / p99 (API s)", String(format: "%.2f / %.2f", stats.detectionDelay.p50, stats.detectionDelay.p99)),
            ("calls after expiry", "\(stats.callsAfterExpiry)"),
            ("wall time", String(format: "%.1f s", seconds)),
            ("throughput", String(format: "%.0f tasks/s", Double(counters.recordsConsumed) / max(seconds, 0.001))),
        ] + extra
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}

/// A live single-line progress bar on a terminal; a plain line every few seconds otherwise.
final class Progress {
    private let total: Int
    private let isTerminal = isatty(STDOUT_FILENO) != 0
    private var lastPlain = ContinuousClock.now - .seconds(10)
    private var lastPolls: Int
    private var lastAt = ContinuousClock.now
    private var rate = 0.0

    init(total: Int, polls: Int) {
        self.total = total
        lastPolls = polls
    }

    func show(done: Int, solved: Int, failed: Int, deadLetters: Int, inFlight: Int, polls: Int, elapsed: Duration) {
        let now = ContinuousClock.now
        let dt = now - lastAt
        let dtSeconds = Double(dt.components.seconds) + Double(dt.components.attoseconds) / 1e18
        if dtSeconds >= 0.5 { // a rate over a shorter span says little
            rate = Double(polls - lastPolls) / dtSeconds
            lastPolls = polls
            lastAt = now
        }
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let line = String(format: "%5.1f%%  done %d/%d  solved %d  failed %d  dead %d  in flight %d  %.0f polls/s  %ds",
                          fraction * 100, done, total, solved, failed, deadLetters, inFlight, rate, elapsed.components.seconds)
        if isTerminal {
            let width = 20
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            print("\r[\(bar)] \(line)\u{1B}[K", terminator: "")
            fflush(nil)
        } else if now - lastPlain >= .seconds(3) {
            lastPlain = now
            print(line)
        }
    }

    func finish() {
        if isTerminal { print("") }
    }
}
