import Foundation

/// What `ezpoll bench` reports: printed as a table, or with `--json` as one JSON object.
/// Durations are real (wall-clock) milliseconds unless a name says `API`.
public struct BenchReport: Codable, Sendable {
    var mode: String
    /// How the parts ran: in one process, or which ran separately.
    var processes: String
    var command: String
    var settings: Settings
    var throughput: Throughput?
    var polls: Polls?
    var detectionDelay: Delay?
    var http: HTTP?
    var cpu: CPU?
    var memory: Memory?
    var idle: Idle?
    var rawHTTP: RawHTTPCeiling.Result?
    /// `--raw-http-future`: the same calls through async-http-client's EventLoopFuture API.
    var rawHTTPFuture: RawHTTPCeiling.Result?
    /// `--separate-processes`: the `ezpoll run` process's own figures.
    var pipelineProcess: PipelineProcess?
    public var notes: [String] = []

    struct PipelineProcess: Codable, Sendable {
        var callsPerSecond: Double
        var cores: Double
        var cpuMicrosecondsPerCall: Double
        var rssMiB: Double
        var peakRSSMiB: Double
        var detectionP50APISeconds: Double
        var detectionP99APISeconds: Double
        /// Detection delay p99 within the poll interval + 1 s (API time).
        var onSchedule: Bool
    }

    struct Settings: Codable, Sendable {
        var rate: Double
        var durationSeconds: Double
        var warmupSeconds: Double
        var timeScale: Double
        var partitions: Int
        var maxConcurrentCalls: Int
        var httpConnections: Int
        var httpClient: String
        var rateLimit: Double
        var maxInFlight: Int
        var pollIntervalMs: Double
        var firstPollDelayMs: Double
        var solveMedianAPISeconds: Double
    }

    struct Throughput: Codable, Sendable {
        var targetRate: Double
        var offeredRate: Double
        /// Outputs per second over the steady window.
        var resolvedPerSecond: Double
        var steadyWindowSeconds: Double
        var keptUp: Bool
        var created: Int
        var resolved: Int
        var solved: Int
        var failed: Int
        var missing: Int
        var unexpectedOutputs: Int
        var heldBackByBacklogGuard: Int
        var maxInputLag: Int
    }

    struct Polls: Codable, Sendable {
        /// From the outputs' `polls`, over every output of the run.
        var mean: Double
        var p99: Double
        /// The simulator's count, over every task it saw polled.
        var simulatorMean: Double
        var simulatorP99: Double
    }

    struct Delay: Codable, Sendable {
        /// Task ready → result seen on the output topic (solved tasks of the steady window).
        var p50Ms: Double
        var p99Ms: Double
        var maxMs: Double
        var pollIntervalMs: Double
        var p99MinusIntervalMs: Double
        /// The same in API seconds (× time scale), comparable to real providers.
        var p50APISeconds: Double
        var p99APISeconds: Double
        /// Ready → the poll that saw it ready (simulator's count), ms.
        var pollDetectionP50Ms: Double
        var pollDetectionP99Ms: Double
        /// The pipeline's `resolvedAt` → output seen (ms precision), i.e. the latency the pipeline adds after the API answered.
        var addedP50Ms: Double
        var addedP99Ms: Double
    }

    struct HTTP: Codable, Sendable {
        var requestsPerSecond: Double
        var ceilingRequestsPerSecond: Double?
        var shareOfCeiling: Double?
    }

    struct CPU: Codable, Sendable {
        /// Whole process CPU seconds (getrusage) per 1,000 resolved tasks, steady window.
        var secondsPerThousandTasks: Double
        /// Same without the threads of the embedded cluster and of the simulator.
        var secondsPerThousandTasksWithoutClusterAndSimulator: Double
        var processCores: Double
        /// CPU seconds in the steady window by component (threads each started).
        var byComponent: [String: Double]
        /// CPU seconds in the steady window by thread name (digits folded to N).
        var byThreadName: [String: Double]
    }

    struct Memory: Codable, Sendable {
        var peakRSSMiB: Double
        var rssMiB: Double
        var inFlightTarget: Int?
        var inFlightReached: Int?
        var baselineRSSMiB: Double?
        /// (peak RSS with the target in flight − RSS before the pipeline took them) / in flight.
        var peakRSSPerInFlightTaskBytes: Double?
        var rssPerInFlightTaskBytes: Double?
    }

    struct Idle: Codable, Sendable {
        var seconds: Double
        var processPercentOfCore: Double
        var withoutClusterAndSimulatorPercentOfCore: Double
        var byThreadName: [String: Double]
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }

    public func table() -> String {
        var rows: [(String, String)] = [("mode", mode), ("processes", processes), ("command", command)]
        let s = settings
        rows.append(("settings", String(format: "R %.0f/s, %.0f s (warm-up %.0f s), time scale %.0fx, %d partitions, %d calls at once over %d connections, rate limit %.0f/s, poll interval %.0f ms",
                                         s.rate, s.durationSeconds, s.warmupSeconds, s.timeScale, s.partitions, s.maxConcurrentCalls, s.httpConnections, s.rateLimit, s.pollIntervalMs) + ", HTTP client \(s.httpClient)"))
        if let t = throughput {
            rows.append(("tasks/s resolved (steady)", String(format: "%.0f over %.1f s (offered %.0f/s, target %.0f/s) — ", t.resolvedPerSecond, t.steadyWindowSeconds, t.offeredRate, t.targetRate) + (t.keptUp ? "kept up" : "DID NOT keep up")))
            rows.append(("tasks created / resolved / missing", "\(t.created) / \(t.resolved) (solved \(t.solved), failed \(t.failed)) / \(t.missing)"))
            rows.append(("held back by backlog guard / max lag", "\(t.heldBackByBacklogGuard) / \(t.maxInputLag) records"))
            if t.unexpectedOutputs > 0 { rows.append(("unexpected outputs (dup/unknown)", "\(t.unexpectedOutputs)")) }
        }
        if let p = polls {
            rows.append(("polls per task mean / p99", String(format: "%.2f / %.0f (simulator: %.2f / %.0f)", p.mean, p.p99, p.simulatorMean, p.simulatorP99)))
        }
        if let d = detectionDelay {
            rows.append(("detection delay p50 / p99", String(format: "%.0f / %.0f ms (%.2f / %.2f API s); max %.0f ms", d.p50Ms, d.p99Ms, d.p50APISeconds, d.p99APISeconds, d.maxMs)))
            rows.append(("  p99 − poll interval", String(format: "%.0f ms (interval %.0f ms)", d.p99MinusIntervalMs, d.pollIntervalMs)))
            rows.append(("  of which ready → poll saw it", String(format: "p50 %.0f / p99 %.0f ms", d.pollDetectionP50Ms, d.pollDetectionP99Ms)))
            rows.append(("  of which resolvedAt → output seen", String(format: "p50 %.0f / p99 %.0f ms", d.addedP50Ms, d.addedP99Ms)))
        }
        if let h = http {
            var text = String(format: "%.0f req/s", h.requestsPerSecond)
            if let c = h.ceilingRequestsPerSecond, let share = h.shareOfCeiling {
                text += String(format: " (ceiling %.0f req/s: %.0f%%)", c, share * 100)
            }
            rows.append(("HTTP requests/s (steady)", text))
        }
        if let p = pipelineProcess {
            rows.append(("ezpoll run process", String(format: "%.0f calls/s, %.2f cores, %.1f µs CPU per call, RSS %.1f MiB (peak %.1f)", p.callsPerSecond, p.cores, p.cpuMicrosecondsPerCall, p.rssMiB, p.peakRSSMiB)))
            rows.append(("detection delay (simulator)", String(format: "p50 %.2f / p99 %.2f API s — ", p.detectionP50APISeconds, p.detectionP99APISeconds) + (p.onSchedule ? "on schedule" : "NOT on schedule")))
        }
        if let r = rawHTTP {
            rows.append(("raw HTTP ceiling", String(format: "%.0f req/s with %d at once over %.1f s (%.3f CPU s per 1k requests, %d unexpected answers)", r.requestsPerSecond, r.concurrency, r.seconds, r.cpuSecondsPerThousandRequests, r.unexpectedAnswers)))
        }
        if let r = rawHTTPFuture {
            rows.append(("raw HTTP, EventLoopFuture path", String(format: "%.0f req/s with %d at once over %.1f s (%.3f CPU s per 1k requests, %d unexpected answers)", r.requestsPerSecond, r.concurrency, r.seconds, r.cpuSecondsPerThousandRequests, r.unexpectedAnswers)))
        }
        if let c = cpu {
            rows.append(("CPU s per 1,000 tasks", String(format: "%.3f whole process; %.3f without cluster and simulator; %.2f cores busy", c.secondsPerThousandTasks, c.secondsPerThousandTasksWithoutClusterAndSimulator, c.processCores)))
            rows.append(("CPU s by component", Self.top(c.byComponent, 6)))
            rows.append(("CPU s by thread name", Self.top(c.byThreadName, 8)))
        }
        if let m = memory {
            rows.append(("RSS peak / now", String(format: "%.1f / %.1f MiB", m.peakRSSMiB, m.rssMiB)))
            if let target = m.inFlightTarget {
                rows.append(("in flight target / reached", "\(target) / \(m.inFlightReached ?? 0)"))
                rows.append(("RSS baseline before intake", String(format: "%.1f MiB", m.baselineRSSMiB ?? 0)))
                rows.append(("RSS per in-flight task", String(format: "%.0f B peak, %.0f B now", m.peakRSSPerInFlightTaskBytes ?? 0, m.rssPerInFlightTaskBytes ?? 0)))
            }
        }
        if let i = idle {
            rows.append(("idle CPU", String(format: "%.2f%% of a core (process), %.2f%% without cluster and simulator, over %.0f s", i.processPercentOfCore, i.withoutClusterAndSimulatorPercentOfCore, i.seconds)))
            rows.append(("idle CPU by thread name", Self.top(i.byThreadName, 8)))
        }
        for note in notes { rows.append(("note", note)) }
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }

    static func top(_ values: [String: Double], _ n: Int) -> String {
        values.filter { $0.value >= 0.005 }.sorted { $0.value > $1.value }.prefix(n)
            .map { $0.key + String(format: " %.2f", $0.value) }.joined(separator: ", ")
    }
}
