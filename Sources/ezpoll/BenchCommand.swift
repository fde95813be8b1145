import ArgumentParser
import Foundation
import Kafka
import Logging
import NIOPosix
import Bench
import Poller
import Simulator
import TaskAPI

/// `ezpoll bench`: throughput, polling cost, detection delay, CPU and memory of the
/// real pipeline, in one process: the embedded Kafka cluster, the simulator (on its
/// own event-loop thread), a load generator, the pipeline and an output collector.
///
/// Modes: throughput (default; `--raw-http` adds the HTTP ceiling), memory
/// (`--in-flight-target N`) and idle (`--idle-seconds S`).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark the pipeline against the simulator on an embedded Kafka cluster (one process).",
        discussion: """
            Default: tasks at --rate per second for --duration seconds; the first --warmup seconds \
            are left out of the steady window. Times of the simulator and of the polling policy \
            are API seconds divided by --time-scale; reported delays are real milliseconds. \
            --in-flight-target N measures RSS per in-flight task with N long-running tasks \
            (time scale 1). --idle-seconds S measures the CPU of an idle pipeline.
            """
    )

    @Option(help: "Target rate R of new tasks per second.")
    var rate: Double = 500
    @Option(help: "Seconds of load.")
    var duration: Double = 30
    @Option(help: "Seconds at the start of the load left out of the steady window.")
    var warmup: Double = 8
    @Option(help: "Simulated API seconds per real second (the policy is scaled alike).")
    var timeScale: Double = 20
    @Option(help: "Partitions of the input and output topics.")
    var partitions: Int = 8
    @Option(help: "Pipeline: most getTaskResult calls at once (also the --raw-http concurrency).")
    var maxConcurrentCalls: Int = BenchOptions().maxConcurrentCalls
    @Option(help: "HTTP client: most connections to the simulator (default: one per concurrent call, as in `ezpoll run`).")
    var maxConnections: Int?
    @Option(help: "HTTP client: nio (our HTTP/1.1 pool, as `ezpoll run` by default) or async-http-client.")
    var httpClient: String = TaskResultClient.Configuration.Transport.nio.rawValue
    @Option(help: "Pipeline: most getTaskResult calls per second.")
    var rateLimit: Double = 100_000
    @Option(help: "Pipeline: most tasks in flight.")
    var maxInFlight: Int = 50_000
    @Option(help: "Policy: API seconds between polls of one task (default: the profile's, 3).")
    var pollInterval: Double?
    @Option(help: "Policy: API seconds from creation to the first poll (default: the profile's, 5).")
    var firstPollDelay: Double?
    @Option(help: "Median solve time, API seconds (lognormal).")
    var solveMedian: Double = BenchOptions().solveMedian
    @Option(help: "Sigma of ln(solve time).")
    var solveSigma: Double = BenchOptions().solveSigma
    @Option(help: "Memory mode: hold this many tasks in flight (long solve times, time scale 1) and report RSS per task.")
    var inFlightTarget: Int?
    @Option(help: "Idle mode: measure the CPU of an idle pipeline over this many seconds.")
    var idleSeconds: Double?
    @Flag(help: "Run `ezpoll broker`, `ezpoll simulate` and `ezpoll run` as separate processes (as users deploy it) and measure the `ezpoll run` process alone; with wrk installed, also the simulator's ceiling.")
    var separateProcesses = false
    @Flag(help: "Run `ezpoll run` (its own process, on `ezpoll broker`) against a provider that misbehaves on purpose (floods, slow and broken answers; ARCHITECTURE.md) and report tasks without an outcome, wrong solutions, key leaks and the process's peak RSS growth. Exits 1 if any check fails.")
    var hostile = false
    @Flag(help: "Also measure the HTTP ceiling: the same client against the same simulator, nothing else running.")
    var rawHttp = false
    @Flag(help: "With --raw-http: also measure async-http-client's EventLoopFuture path (no task per request) against the same simulator.")
    var rawHttpFuture = false
    @Option(help: "Seconds of the --raw-http measurement.")
    var rawHttpSeconds: Double = 5
    @Option(help: "Event-loop threads of the simulator.")
    var simulatorThreads: Int = 1
    @Option(name: .customLong("kafka-config"), parsing: .singleValue,
            help: "A librdkafka property key=value for the pipeline's consumer and producer (repeatable), as for `ezpoll run`.")
    var kafkaConfig: [String] = []
    @Option(help: "Seed of the solve-time draws.")
    var seed: UInt64 = 1
    @Option(help: "With --separate-processes: events say \"callback\": true and the simulator sends provider callbacks to ezpoll run's receiver, losing this share of them (0...1). Off unless set.")
    var callbackLoss: Double?
    @Option(help: "With --callback-loss: most API seconds from a task being done to its callback (uniform from 0).")
    var callbackMaxDelay: Double = BenchOptions().callbackMaxDelay
    @Flag(help: "Print one JSON object instead of the table.")
    var json = false
    @Option(help: "Log level of the pipeline and Kafka clients.")
    var logLevel: String = "error"

    func validate() throws {
        guard rate > 0, duration > 0, warmup >= 0, warmup < duration else {
            throw ValidationError("--rate and --duration must be > 0 and --warmup in [0, duration)")
        }
        guard timeScale > 0, partitions >= 1, maxConcurrentCalls >= 1, rateLimit > 0, maxInFlight >= 1 else {
            throw ValidationError("--time-scale, --partitions, --max-concurrent-calls, --rate-limit and --max-in-flight must be positive")
        }
        guard solveMedian > 0, solveSigma >= 0 else { throw ValidationError("--solve-median must be > 0, --solve-sigma >= 0") }
        if let n = inFlightTarget, n < 1 { throw ValidationError("--in-flight-target must be at least 1") }
        if let s = idleSeconds, s <= 0 { throw ValidationError("--idle-seconds must be > 0") }
        guard rawHttpSeconds > 0, simulatorThreads >= 1 else { throw ValidationError("--raw-http-seconds and --simulator-threads must be positive") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "ezpoll.bench")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .error
        let options = try options()
        if hostile {
            let report = try await HostileRun(options: options, logger: logger).run()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print(report.text)
            }
            if !report.passed { throw ExitCode(1) }
            return
        }
        if options.separateProcesses {
            print(json ? try await SeparateProcessesBench(options: options, logger: logger).run().json()
                       : try await SeparateProcessesBench(options: options, logger: logger).run().table())
            return
        }
        let harness = try await BenchHarness.start(options: options, logger: logger)
        var report: BenchReport
        do {
            switch options.mode {
            case .idle: report = try await harness.idle(seconds: idleSeconds ?? 20)
            case .memory: report = try await harness.memory(target: inFlightTarget ?? 200_000)
            case .throughput: report = try await harness.throughput()
            }
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
        report.notes.append("RSS and whole-process CPU include the embedded cluster (up to ~5 MiB kept per partition), the simulator and the bench's own bookkeeping")
        print(json ? report.json() : report.table())
    }

    /// The flags as typed options.
    func options() throws -> BenchOptions {
        var options = BenchOptions()
        (options.rate, options.duration, options.warmup, options.timeScale) = (rate, duration, warmup, timeScale)
        (options.partitions, options.maxConcurrentCalls, options.maxConnections) = (partitions, maxConcurrentCalls, maxConnections)
        (options.rateLimit, options.maxInFlight, options.pollInterval, options.firstPollDelay) = (rateLimit, maxInFlight, pollInterval, firstPollDelay)
        (options.solveMedian, options.solveSigma, options.inFlightTarget, options.idleSeconds) = (solveMedian, solveSigma, inFlightTarget, idleSeconds)
        (options.rawHttp, options.rawHttpFuture, options.rawHttpSeconds) = (rawHttp, rawHttpFuture, rawHttpSeconds)
        (options.simulatorThreads, options.seed, options.separateProcesses) = (simulatorThreads, seed, separateProcesses)
        options.kafkaProperties = try KafkaProperty.parse(kafkaConfig)
        if let callbackLoss {
            guard separateProcesses, (0...1).contains(callbackLoss) else {
                throw ValidationError("--callback-loss takes a share 0...1 and needs --separate-processes")
            }
            guard callbackMaxDelay >= 0, callbackMaxDelay.isFinite else { throw ValidationError("--callback-max-delay must be >= 0 seconds") }
            (options.callbackLoss, options.callbackMaxDelay) = (callbackLoss, callbackMaxDelay)
        }
        guard let transport = TaskResultClient.Configuration.Transport(rawValue: httpClient) else {
            throw ValidationError("--http-client must be nio or async-http-client (got '\(httpClient)')")
        }
        options.httpTransport = transport
        options.commandLine = (["ezpoll"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        return options
    }
}
