import Foundation
import Testing

/// `ezpoll bench` end to end, small: it runs the real pipeline, accounts for every task
/// it created, and reports each measured figure in its JSON. Speed is never asserted
/// (shared machines); BENCHMARKS.md holds the figures of full runs.
@Suite("ezpoll bench", .serialized)
struct BenchCommandTests {
    @Test("a short bench run resolves every task it created and reports every figure")
    func shortRun() throws {
        let process = Process()
        process.executableURL = ProcessReliabilityTests.binary
        process.arguments = ["bench", "--rate", "40", "--duration", "6", "--warmup", "2", "--json"]
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let log = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(log.suffix(2_000))")
        let report = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any], "one JSON object: \(String(decoding: output, as: UTF8.self))")

        let throughput = try #require(report["throughput"] as? [String: Any])
        let created = try #require(throughput["created"] as? Int)
        #expect(created >= 150, "about 40/s for 6 s: \(created)")
        #expect(throughput["resolved"] as? Int == created, "every created task resolved")
        #expect(throughput["missing"] as? Int == 0)
        #expect(throughput["unexpectedOutputs"] as? Int == 0)
        #expect((throughput["resolvedPerSecond"] as? Double ?? 0) > 0)

        let polls = try #require(report["polls"] as? [String: Any])
        #expect((polls["mean"] as? Double ?? 0) >= 1, "each task polled at least once")
        let delay = try #require(report["detectionDelay"] as? [String: Any])
        let p50 = try #require(delay["p50Ms"] as? Double)
        let p99 = try #require(delay["p99Ms"] as? Double)
        #expect(p50 > 0 && p50 <= p99)
        let http = try #require(report["http"] as? [String: Any])
        #expect((http["requestsPerSecond"] as? Double ?? 0) > 0)
        let cpu = try #require(report["cpu"] as? [String: Any])
        #expect((cpu["secondsPerThousandTasks"] as? Double ?? 0) > 0)
        let memory = try #require(report["memory"] as? [String: Any])
        #expect((memory["peakRSSMiB"] as? Double ?? 0) > 0)
    }
}
