import Foundation
import Testing
import TestSupport

/// The members (`ezpoll run` processes) of one process test, and what the test says
/// when it fails: which tasks have no output (partition, offset), what the broker has
/// committed, and each member's state from its `/metrics` and its last log lines. The
/// members' logs are kept (and their paths printed) when the test fails; a test that
/// passes removes them.
final class ProcessTestRun: @unchecked Sendable {
    let name: String
    let harness: PipelineHarness
    let group: String
    let partitions: Int
    let logDirectory: URL
    private let state = Locked<(members: [RunProcess], failed: Bool, finished: Bool)>(([], false, false))

    init(_ name: String, harness: PipelineHarness, group: String, partitions: Int = 4) throws {
        self.name = name
        self.harness = harness
        self.group = group
        self.partitions = partitions
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        logDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("ezpoll-test-logs/\(name)-\(stamp)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
    }

    var members: [RunProcess] { state.current.members }
    var failed: Bool { state.current.failed }

    /// Starts a member of the test's group.
    func start(key: String, extra: [String] = [], environment: [String: String] = [:]) throws -> RunProcess {
        let index = state.withLock { $0.members.count }
        let member = try RunProcess(harness: harness, group: group, key: key, extra: extra, environment: environment,
                                    logURL: logDirectory.appendingPathComponent("member-\(index).log"), name: "member-\(index)")
        state.withLock { $0.members.append(member) }
        return member
    }

    /// Records an issue (with the diagnosis) unless `condition` holds.
    func check(_ condition: Bool, _ message: @autoclosure () -> String,
               sourceLocation: SourceLocation = #_sourceLocation) async {
        guard !condition else { return }
        state.withLock { $0.failed = true }
        Issue.record("\(message())\n\(await diagnosis(missing: nil))", sourceLocation: sourceLocation)
    }

    /// Waits until `condition` holds; on a timeout records an issue that says what is
    /// missing (`missing` lists the task ids without an output) and what each member
    /// was doing, then throws.
    func wait(_ what: String, timeout: Double, missing: (@Sendable () -> [String])? = nil,
              sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try await !condition() {
            if Date() > deadline {
                state.withLock { $0.failed = true }
                Issue.record("timed out after \(Int(timeout)) s waiting for: \(what)\n\(await diagnosis(missing: missing?()))",
                             sourceLocation: sourceLocation)
                throw TimedOut(what: what)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// What is missing, what the broker committed, and each member's state and last lines.
    func diagnosis(missing: [String]?) async -> String {
        var lines: [String] = []
        if let missing {
            lines.append("\(missing.count) without an output: \(harness.describePlacement(of: missing))")
        }
        if let committed = try? await harness.committedOffsets(group: group, partitions: partitions) {
            lines.append("committed by group \(group): " + committed.sorted { $0.key < $1.key }
                .map { "[\($0.key)]@\($0.value)" }.joined(separator: " "))
        }
        lines.append("end offsets of the input: " + harness.publishedEndOffsets().sorted { $0.key < $1.key }
            .map { "[\($0.key)]@\($0.value)" }.joined(separator: " "))
        for member in members {
            lines.append("--- \(member.name) (pid \(member.process.processIdentifier), \(member.process.isRunning ? "running" : "exited \(member.process.terminationStatus)"), log \(member.logURL.path))")
            lines.append("state: \(await member.stateSummary())")
            lines.append(contentsOf: member.log.split(separator: "\n").suffix(25).map { "  \($0)" })
        }
        lines.append("member logs kept in \(logDirectory.path)")
        return lines.joined(separator: "\n")
    }

    /// Ends the test: the members are stopped; their logs are removed if nothing failed.
    func finish() {
        let (members, failed) = state.withLock { state in
            state.finished = true
            return (state.members, state.failed)
        }
        for member in members where member.process.isRunning { member.kill9() }
        if failed {
            print("\(name): member logs kept in \(logDirectory.path)")
        } else {
            try? FileManager.default.removeItem(at: logDirectory)
        }
    }

    deinit {
        let current = state.current
        guard !current.finished else { return }
        // The test threw before `finish()`: it failed; keep the logs.
        for member in current.members where member.process.isRunning { member.kill9() }
        print("\(name): member logs kept in \(logDirectory.path)")
    }
}

/// A running `ezpoll run` with its combined output captured to a file and a metrics
/// port of its own.
final class RunProcess: @unchecked Sendable {
    let process = Process()
    let logURL: URL
    let name: String
    let metricsPort: Int

    init(harness: PipelineHarness, group: String, key: String, extra: [String], environment extraEnvironment: [String: String] = [:],
         logURL: URL, name: String) throws {
        self.logURL = logURL
        self.name = name
        metricsPort = try freeLoopbackPort()
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        process.executableURL = ProcessReliabilityTests.binary
        process.arguments = ["run", "--api-url", harness.simulator.baseURL, "--time-scale", String(harness.scale),
                             "--rate-limit", "5000", "--kafka-config", "session.timeout.ms=6000",
                             "--kafka-config", "heartbeat.interval.ms=500", "--kafka-config", "fetch.wait.max.ms=10"] + extra
        var environment = ProcessInfo.processInfo.environment
        environment["EZPOLL_BROKERS"] = harness.cluster.bootstrapServers
        environment["EZPOLL_GROUP_ID"] = group
        environment["EZPOLL_CLIENT_KEY"] = key
        environment["EZPOLL_METRICS_PORT"] = String(metricsPort)
        // Loopback only: the default (every interface) is for a pod, not a test machine.
        environment["EZPOLL_METRICS_HOST"] = "127.0.0.1"
        environment.merge(extraEnvironment) { $1 }
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// The input partitions this member owns, from its assignment and revoke log lines.
    var ownedPartitions: Set<Int> {
        var owned = Set<Int>()
        for line in log.split(separator: "\n") {
            let assigned = line.contains("partitions assigned")
            guard assigned || line.contains("partitions revoked") else { continue }
            let numbers = line.matches(of: #/\.tasks\[(\d+)\]/#).compactMap { Int($0.output.1) }
            if assigned { owned.formUnion(numbers) } else { owned.subtract(numbers) }
        }
        return owned
    }

    /// The member's `/metrics`, when it answers.
    func metrics() async throws -> String {
        try await HTTPProbe(base: "http://127.0.0.1:\(metricsPort)").get("/metrics").body
    }

    /// What the member is doing, from its metrics: assignment, pauses, tasks and calls
    /// in flight, per-partition consumed and committed offsets.
    func stateSummary() async -> String {
        guard process.isRunning else { return "not running" }
        guard let text = try? await metrics() else { return "metrics on port \(metricsPort) did not answer" }
        let names = ["ezpoll_ready", "ezpoll_assigned_partitions", "ezpoll_input_paused", "ezpoll_paused_partitions",
                     "ezpoll_input_held_records", "ezpoll_in_flight_limit", "ezpoll_tasks_in_flight", "ezpoll_calls_in_progress",
                     "ezpoll_partition_consumed_offset", "ezpoll_partition_committed_offset",
                     "ezpoll_partition_finished_above_committed", "ezpoll_ip_ban_active", "ezpoll_poll_slowdown_factor",
                     "ezpoll_records_consumed_total", "ezpoll_results_published_total"]
        let samples = text.split(separator: "\n").filter { line in
            !line.hasPrefix("#") && names.contains { line.hasPrefix($0 + " ") || line.hasPrefix($0 + "{") }
        }
        return samples.isEmpty ? "no ezpoll_ samples" : samples.joined(separator: "; ")
    }

    func kill9() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then the seconds it took to exit.
    func terminate() -> Double {
        let start = Date()
        process.terminate()
        process.waitUntilExit()
        return Date().timeIntervalSince(start)
    }

    deinit {
        if process.isRunning { kill9() }
    }
}
