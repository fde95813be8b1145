import ArgumentParser
import Dispatch
import Foundation
import Logging
import Poller
import ServiceLifecycle
import Simulator

/// `ezpoll simulate`: runs the fake provider API standalone until SIGINT/SIGTERM.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the captcha provider simulator (createTask, getTaskResult, stats) on a loopback HTTP port.",
        discussion: """
        Prints "listening on http://HOST:PORT" once bound, then serves until SIGINT or SIGTERM.
        Times (solve times, window, ban rule, per-task interval) are API seconds, divided by --time-scale.
        Runtime changes: POST /config with a JSON patch, e.g. {"faults":{"http500Probability":0.1}}.
        """
    )

    @Option(help: "Address to bind (keep it loopback).")
    var host = "127.0.0.1"

    @Option(help: "Port to bind; 0 picks a free one.")
    var port = 0

    @Option(name: .customLong("time-scale"), help: "API seconds per real second (60 = a minute per second).")
    var timeScale: Double = 1

    @Option(help: "Seed for task ids, solve times and faults.")
    var seed: UInt64 = 1

    @Option(name: .customLong("median"), help: "Median solve time (API s) of the lognormal distribution.")
    var median: Double = SimulatorConfig.SolveTimeDistribution.standard.median

    @Option(name: .customLong("sigma"), help: "Sigma of ln(solve time).")
    var sigma: Double = SimulatorConfig.SolveTimeDistribution.standard.sigma

    @Option(name: .customLong("min-solve"), help: "Shortest solve time (API s).")
    var minSolve: Double = SimulatorConfig.SolveTimeDistribution.standard.min

    @Option(name: .customLong("max-solve"), help: "Longest solve time (API s).")
    var maxSolve: Double = SimulatorConfig.SolveTimeDistribution.standard.max

    @Option(name: .customLong("unsolvable"), help: "Fraction of tasks that end ERROR_CAPTCHA_UNSOLVABLE.")
    var unsolvableFraction: Double = 0

    @Option(name: .customLong("task-ids"), help: "uuid (ez-captcha) or integer (anti-captcha style).")
    var taskIds: String = "uuid"

    @Option(name: .customLong("valid-key"), help: "An accepted clientKey (repeatable). None given: any key is accepted.")
    var validKeys: [String] = []

    @Option(name: .customLong("zero-balance-key"), help: "A key answered with ERROR_ZERO_BALANCE (repeatable).")
    var zeroBalanceKeys: [String] = []

    @Option(help: "IP-ban rule MAX_ERRORS/WINDOW_S/BAN_S, e.g. 100/60/600. Off by default.")
    var ban: String?

    @Option(name: .customLong("min-poll-interval"), help: "Per-task minimum poll interval (API s): ERROR_TOO_MUCH_REQUESTS.")
    var minPollInterval: Double?

    @Option(name: .customLong("max-polls"), help: "Per-task poll cap; later polls get ERROR_TASKID_INVALID.")
    var maxPolls: Int?

    @Option(name: .customLong("p500"), help: "Probability of HTTP 500.")
    var p500: Double = 0
    @Option(name: .customLong("p503"), help: "Probability of HTTP 503.")
    var p503: Double = 0
    @Option(name: .customLong("p429"), help: "Probability of HTTP 429 with Retry-After.")
    var p429: Double = 0
    @Option(name: .customLong("retry-after"), help: "Retry-After seconds sent with 429.")
    var retryAfter: Int = 1
    @Option(name: .customLong("p-drop"), help: "Probability of closing the connection without answering.")
    var pDrop: Double = 0
    @Option(name: .customLong("p-slow"), help: "Probability of a slow answer.")
    var pSlow: Double = 0
    @Option(name: .customLong("slow-delay"), help: "Delay of a slow answer, real seconds.")
    var slowDelay: Double = 2
    @Option(name: .customLong("p-malformed"), help: "Probability of a non-JSON 200 body.")
    var pMalformed: Double = 0
    @Option(name: .customLong("p-truncated"), help: "Probability of a truncated JSON body.")
    var pTruncated: Double = 0
    @Option(name: .customLong("p-unavailable"), help: "Probability of ERROR_SERVICE_UNAVALIABLE.")
    var pUnavailable: Double = 0

    @Option(name: .customLong("callback-url"), help: "POST each task's callback here when it is done (unless its createTask names a callbackUrl). Off by default.")
    var callbackUrl: String?
    @Option(name: .customLong("callback-loss"), help: "Probability that a task's callback is never sent.")
    var callbackLoss: Double = 0
    @Option(name: .customLong("callback-duplicate"), help: "Probability that a callback is sent twice.")
    var callbackDuplicate: Double = 0
    @Option(name: .customLong("callback-forged"), help: "Probability of a forged ready callback while the task is still being solved.")
    var callbackForged: Double = 0
    @Option(name: .customLong("callback-delay"), help: "Callback delay after the task is done, API seconds: MIN or MIN-MAX (uniform).")
    var callbackDelay: String = "0"

    @Option(name: .customLong("config"), help: "JSON file with a configuration patch, applied after the flags.")
    var configFile: String?

    func makeConfig() throws -> SimulatorConfig {
        var config = SimulatorConfig()
        guard timeScale > 0 else { throw ValidationError("--time-scale must be positive") }
        config.timeScale = timeScale
        config.seed = seed
        config.solveTime = .init(kind: .lognormal, median: median, sigma: sigma, min: minSolve, max: maxSolve)
        config.unsolvableFraction = unsolvableFraction
        guard let style = SimulatorConfig.TaskIdStyle(rawValue: taskIds) else {
            throw ValidationError("--task-ids must be uuid or integer")
        }
        config.taskIdStyle = style
        config.validKeys = validKeys.isEmpty ? nil : validKeys
        config.zeroBalanceKeys = zeroBalanceKeys
        if let ban {
            let parts = ban.split(separator: "/").map { Double($0) }
            guard parts.count == 3, let maxErrors = parts[0], let window = parts[1], let duration = parts[2] else {
                throw ValidationError("--ban must be MAX_ERRORS/WINDOW_S/BAN_S, e.g. 100/60/600")
            }
            config.ban = .init(maxErrors: Int(maxErrors), window: window, duration: duration)
        }
        config.minPollInterval = minPollInterval
        config.maxPollsPerTask = maxPolls
        config.faults.http500Probability = p500
        config.faults.http503Probability = p503
        config.faults.http429Probability = p429
        config.faults.retryAfterSeconds = retryAfter
        config.faults.dropProbability = pDrop
        config.faults.slowProbability = pSlow
        config.faults.slowDelayReal = slowDelay
        config.faults.malformedProbability = pMalformed
        config.faults.truncatedProbability = pTruncated
        config.faults.serviceUnavailableProbability = pUnavailable
        config.callbacks.url = callbackUrl
        config.callbacks.lossProbability = callbackLoss
        config.callbacks.duplicateProbability = callbackDuplicate
        config.callbacks.forgedProbability = callbackForged
        let delays = callbackDelay.split(separator: "-").map { Double($0) }
        guard (1...2).contains(delays.count), let minDelay = delays[0], let maxDelay = delays.last! else {
            throw ValidationError("--callback-delay must be MIN or MIN-MAX seconds (got '\(callbackDelay)')")
        }
        (config.callbacks.minDelay, config.callbacks.maxDelay) = (minDelay, maxDelay)
        if let configFile {
            let data = try Data(contentsOf: URL(fileURLWithPath: configFile))
            config = try config.merged(withJSON: Array(data))
        }
        do {
            try config.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        return config
    }

    func run() async throws {
        let config = try makeConfig()
        let server = try await SimulatorServer.start(config: config, host: host, port: port)
        print("ezpoll simulator listening on \(server.baseURL) (time scale \(config.timeScale), seed \(config.seed))")
        fflush(nil)
        try await ServiceGroup(configuration: .init(services: [.init(service: StopOnShutdown { await server.stop() })],
                                                    gracefulShutdownSignals: [.sigterm, .sigint],
                                                    logger: Logger(label: "ezpoll.simulate"))).run()
        print("stopped")
        let stats = server.stats()
        print("tasks created \(stats.tasksCreated), getTaskResult calls \(stats.getTaskResultCalls)")
    }
}
