import Poller
import Simulator
import TaskAPI

/// What one bench run measures and with what load, typed (`ezpoll bench` fills it from
/// its flags; see `BenchCommand` for what each means).
public struct BenchOptions: Sendable {
    public enum Mode: String, Sendable {
        case throughput, memory, idle
    }

    public var rate = 500.0
    public var duration = 30.0
    public var warmup = 8.0
    public var timeScale = 20.0
    public var partitions = 8
    public var maxConcurrentCalls = PollingEngine.Configuration().maxConcurrentCalls
    /// Most connections to the simulator; nil: one per concurrent call (as `ezpoll run`).
    public var maxConnections: Int?
    public var httpTransport = TaskResultClient.Configuration().transport
    public var rateLimit = 100_000.0
    public var maxInFlight = 50_000
    /// API seconds; nil: the profile's.
    public var pollInterval: Double?
    public var firstPollDelay: Double?
    public var solveMedian = SimulatorConfig.SolveTimeDistribution.standard.median
    public var solveSigma = SimulatorConfig.SolveTimeDistribution.standard.sigma
    public var inFlightTarget: Int?
    public var idleSeconds: Double?
    /// Run broker, simulator and pipeline as processes of their own (`ezpoll bench --separate-processes`).
    public var separateProcesses = false
    public var rawHttp = false
    public var rawHttpFuture = false
    public var rawHttpSeconds = 5.0
    public var simulatorThreads = 1
    /// `--separate-processes` only: the simulator sends provider callbacks to the
    /// pipeline's receiver, each lost with this probability; nil: no callbacks.
    public var callbackLoss: Double?
    /// API seconds from a task being done to its callback, at most (uniform from 0).
    /// Default: 0.5 (providers post the result when the solver hands it in).
    public var callbackMaxDelay = 0.5
    /// librdkafka properties for the pipeline's consumer and producer.
    public var kafkaProperties: [String: String] = [:]
    public var seed: UInt64 = 1
    /// The command line as given (for the report).
    public var commandLine = "ezpoll bench"

    public init() {}

    public var mode: Mode {
        if idleSeconds != nil { return .idle }
        if inFlightTarget != nil { return .memory }
        return .throughput
    }

    public static let processes = "one process: embedded Kafka (librdkafka mock cluster), simulator (own event-loop thread), load generator, pipeline, output collector"
}

/// A bench run that could not finish (a timeout waiting for the parts).
public struct BenchError: Error, CustomStringConvertible {
    public var description: String

    init(_ description: String) { self.description = description }
}
