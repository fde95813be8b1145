import Foundation
import NIOConcurrencyHelpers
import Simulator
import TaskAPI

/// `--raw-http`: how many getTaskResult requests per second the pipeline's own
/// `TaskResultClient` gets through against the same simulator with nothing else
/// running: `concurrency` loops, each calling as fast as answers come back.
enum RawHTTPCeiling {
    struct Result: Sendable, Codable {
        var requestsPerSecond: Double
        var requests: Int
        var seconds: Double
        var concurrency: Int
        /// Answers other than `processing` (should be 0).
        var unexpectedAnswers: Int
        var cpuSecondsPerThousandRequests: Double
    }

    static func measure(client: TaskResultClient, simulator: SimulatorServer, key: ClientKey,
                        concurrency: Int, seconds: Double, warmup: Double = 1) async -> Result {
        // Tasks that stay `processing` for the whole measurement.
        let ids = simulator.withCore { core, now in
            (0..<max(1, concurrency * 4)).map { _ in core.createTask(solveTime: 1e9, now: now) }
        }
        let warmEnd = ContinuousClock.now + .milliseconds(Int64(warmup * 1000))
        let end = warmEnd + .milliseconds(Int64(seconds * 1000))
        let cpuAtStart = NIOLockedValueBox(0.0)
        let counts = await withTaskGroup(of: (Int, Int).self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var count = 0
                    var unexpected = 0
                    var i = worker
                    while true {
                        let now = ContinuousClock.now
                        if now >= end { break }
                        let outcome = await client.getTaskResult(taskId: ids[i % ids.count], clientKey: key)
                        i += concurrency
                        if ContinuousClock.now >= warmEnd && now >= warmEnd {
                            count += 1
                            if case .processing = outcome {} else { unexpected += 1 }
                        }
                    }
                    return (count, unexpected)
                }
            }
            group.addTask {
                try? await Task.sleep(until: warmEnd, clock: .continuous)
                cpuAtStart.withLockedValue { $0 = ProcessMetrics.cpuSeconds() }
                return (0, 0)
            }
            var total = (0, 0)
            for await (count, unexpected) in group {
                total.0 += count
                total.1 += unexpected
            }
            return total
        }
        let cpu = ProcessMetrics.cpuSeconds() - cpuAtStart.withLockedValue { $0 }
        return Result(requestsPerSecond: Double(counts.0) / seconds, requests: counts.0, seconds: seconds,
                      concurrency: concurrency, unexpectedAnswers: counts.1,
                      cpuSecondsPerThousandRequests: counts.0 > 0 ? cpu / Double(counts.0) * 1000 : 0)
    }
}

