import Foundation
import TaskModel

extension PipelineMetrics {
    /// `# HELP` text of every ezpoll metric. Every one of them is declared (HELP and TYPE)
    /// from the first scrape, with or without samples yet.
    public static let help: [(name: String, type: String, help: String)] = [
        (Name.recordsConsumed, "counter", "Input records read from Kafka."),
        (Name.deadLetters, "counter", "Input records dead-lettered, by reason code."),
        (Name.tasksSolved, "counter", "Tasks that got a solution."),
        (Name.taskFailures, "counter", "Tasks that ended without a solution, by failure reason."),
        (Name.polls, "counter", "getTaskResult calls, by outcome class."),
        (Name.httpRequestDuration, "histogram", "Duration of getTaskResult calls in seconds, by outcome class."),
        (Name.resultsPublished, "counter", "Outputs acknowledged by the broker, by topic."),
        (Name.publishErrors, "counter", "Outputs the broker did not acknowledge (retried), by topic."),
        (Name.creationToResult, "histogram", "Seconds from task creation to its output, by result."),
        (Name.tokenLifeLeft, "histogram", "Seconds left of a solved token's lifetime when its solution is published (task types with a known lifetime: reCAPTCHA, hCaptcha, Turnstile); a low bucket filling means consumers get tokens that are about to die."),
        (Name.accountBalance, "gauge", "The account's balance from getBalance (--balance-interval), by provider and key fingerprint; at zero or below the input is held until it is topped up."),
        (Name.balanceCheckFailures, "counter", "getBalance calls that gave no balance (transport, provider or account errors), by provider."),
        (Name.callbacks, "counter", "Provider callbacks received (--callback-port), by provider (a configured one, or unknown) and result: poll_due (the task's next poll made due now), after_call (a call was out: polled again at once if it says processing), already_due, finished, over_limit (the task had its share), unknown_task (not in flight here), or a rejection: forbidden (wrong token, 403), malformed (no task id, 400), too_large (413), not_found (404), method_not_allowed (405); and via: http (this member's receiver) or relay (another member's, through --callback-relay-topic)."),
        (Name.callbackRelay, "counter", "Callbacks written to the relay topic for the member that holds the task (direction sent) or read from it (received), by outcome: ok, or failed (not acknowledged, or unreadable)."),
        (Name.spend, "counter", "What solved tasks cost, as their providers' answers stated it (providers that send a cost), by provider and task type (the first 32 task types, then other)."),
        (Name.providerSolveTime, "histogram", "The provider's own solve time (its endTime minus createTime, whole seconds) of solved tasks whose answer carries both, by provider: compare with ezpoll_creation_to_result_seconds, which adds the detection delay."),
        (Name.pollsPerTask, "histogram", "getTaskResult calls a task took before its outcome, by provider and task type (the first 32 task types, then other)."),
        (Name.expiredSolutions, "counter", "Solutions published after their token's lifetime had passed (their expiresAt is in the past)."),
        (Name.ipBans, "counter", "ERROR_IP_BANNED pauses started."),
        (Name.accountsDisabledTotal, "counter", "Keys disabled by an account error."),
        (Name.kafkaClientEvents, "counter", "Kafka client events (errors, brokers down, fatal), by kind."),
        (Name.tasksInFlight, "gauge", "Tasks held: waiting, in a call or waiting for their output's acknowledgement."),
        (Name.inputHeld, "gauge", "Input records fetched before the input paused at the in-flight bound, waiting untracked (like the backlog in Kafka: not tasks, not committed)."),
        (Name.inFlightLimit, "gauge", "The in-flight bound now: --max-in-flight, lowered while polls start late and raised back while they start on time."),
        (Name.callsInProgress, "gauge", "getTaskResult calls in progress."),
        (Name.inputPaused, "gauge", "1 while the input is paused (in-flight limit, an account without balance, or stopping)."),
        (Name.pausedPartitions, "gauge", "Input partitions paused."),
        (Name.assignedPartitions, "gauge", "Input partitions assigned to this member."),
        (Name.ipBanActive, "gauge", "1 while an IP ban pauses every call."),
        (Name.ipBanRemaining, "gauge", "Seconds until the IP ban pause ends."),
        (Name.accountsDisabled, "gauge", "Keys currently disabled by an account error."),
        (Name.pollSlowdown, "gauge", "Error-budget slowdown of the call rate (1 = full speed)."),
        (Name.callRateLimit, "gauge", "getTaskResult calls per second this member may make now: the rate limit, times its share of the group's input partitions, divided by the slowdown."),
        (Name.callBudgetUsed, "gauge", "Calls started since the previous scrape over what the call rate allowed (1 = the budget binds)."),
        (Name.pollLateness, "histogram", "Seconds a poll started after its scheduled time (late polls mean the budget or the process cannot keep tasks on schedule)."),
        (Name.brokersDown, "gauge", "1 while librdkafka reports every broker down."),
        (Name.ready, "gauge", "1 when /health/ready answers 200."),
        (Name.watermarkLag, "gauge", "Records consumed at or above the committed offset and not recorded finished (what a crash would process again), by partition."),
        (Name.consumedOffset, "gauge", "Next offset read, by partition."),
        (Name.committedOffset, "gauge", "Committed offset (the lowest unfinished), by partition."),
        (Name.finishedAboveCommitted, "gauge", "Finished offsets above the committed one, recorded in the commit metadata, by partition."),
        (Name.brokerLag, "gauge", "Lag as the brokers see it, what KEDA and Burrow read: the partition's high watermark minus the group's committed offset, by partition (this member's assigned ones, every 15 s). It counts tasks in flight as well as the backlog: ezpoll commits only finished work."),
        (Name.commitStall, "gauge", "Seconds since the partition's committed offset last advanced while consumed records wait above it (0 when none wait); past --stall-threshold the member turns unready."),
        (Name.commitMetadataFill, "gauge", "The last commit's finished-offset metadata as a share of --commit-metadata-max-bytes, by partition; at 1 the lowest finished offsets are kept and the rest dropped (a crash or handover repeats them)."),
        (Name.commitMetadataTruncated, "counter", "Commits whose finished offsets did not all fit under --commit-metadata-max-bytes (the dropped ones are repeated after a crash or handover, never lost)."),
        ("ezpoll_build_info", "gauge", "Always 1; the labels say which ezpoll this is."),
        ("process_cpu_seconds_total", "counter", "User and system CPU time of the process in seconds."),
        ("process_resident_memory_bytes", "gauge", "Resident memory of the process in bytes."),
        ("process_open_fds", "gauge", "Open file descriptors of the process."),
        ("process_start_time_seconds", "gauge", "Start time of the process in seconds since the Unix epoch."),
    ]

    /// The registry's exposition with `# HELP` lines, every ezpoll metric declared, the
    /// build info and the process metrics.
    func enrichedExposition(registryText: String) -> [UInt8] {
        var declared = Set<String>()
        var out = ""
        out.reserveCapacity(registryText.utf8.count + 4_096)
        let helpByName = Dictionary(uniqueKeysWithValues: Self.help.map { ($0.name, $0.help) })
        for line in registryText.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE ") {
                let name = String(line.dropFirst(7).prefix { $0 != " " })
                declared.insert(name)
                if let help = helpByName[name] { out += "# HELP \(name) \(help)\n" }
            }
            if !line.isEmpty { out += line + "\n" }
        }
        for metric in Self.help where !declared.contains(metric.name) {
            out += "# HELP \(metric.name) \(metric.help)\n# TYPE \(metric.name) \(metric.type)\n"
            switch metric.name {
            case "ezpoll_build_info":
                out += "ezpoll_build_info{version=\"\(EzpollVersion.string)\"} 1\n"
            case "process_cpu_seconds_total":
                if let cpu = ProcessSample.cpuSeconds() { out += "process_cpu_seconds_total \(cpu)\n" }
            case "process_resident_memory_bytes":
                if let rss = ProcessSample.residentBytes() { out += "process_resident_memory_bytes \(rss)\n" }
            case "process_open_fds":
                if let fds = ProcessSample.openFileDescriptors() { out += "process_open_fds \(fds)\n" }
            case "process_start_time_seconds":
                if let start = ProcessSample.startTime() { out += "process_start_time_seconds \(start)\n" }
            case Name.pollLateness:
                out += Self.histogramLines(Name.pollLateness, pollLatenessSample)
            default:
                break // declared; its series appear with the first event
            }
        }
        return Array(out.utf8)
    }
}

extension PipelineMetrics {
    /// A `PollLateness` in the Prometheus histogram text format (seconds).
    static func histogramLines(_ name: String, _ lateness: PollLateness) -> String {
        var out = ""
        let cumulative = lateness.cumulativeCounts
        for (bound, count) in zip(PollLateness.bucketBounds, cumulative) {
            out += "\(name)_bucket{le=\"\(Double(bound) / 1_000)\"} \(count)\n"
        }
        out += "\(name)_bucket{le=\"+Inf\"} \(lateness.count)\n"
        out += "\(name)_sum \(Double(lateness.sumMilliseconds) / 1_000)\n"
        out += "\(name)_count \(lateness.count)\n"
        return out
    }
}

/// The process's own figures, read from /proc at scrape time (Linux).
enum ProcessSample {
    private static var ticksPerSecond: Double { Double(sysconf(Int32(_SC_CLK_TCK))) }

    /// Fields of /proc/self/stat after the command name.
    private static func statFields() -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    static func cpuSeconds() -> Double? {
        // state is field 3; utime and stime are 14 and 15 (1-based), so 11 and 12 here.
        guard let f = statFields(), f.count > 12, let user = Double(f[11]), let system = Double(f[12]) else { return nil }
        return (user + system) / ticksPerSecond
    }

    static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func openFileDescriptors() -> Int? {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).map(\.count)
    }

    static func startTime() -> Double? {
        // starttime is field 22 (ticks after boot); btime in /proc/stat is the boot time.
        guard let f = statFields(), f.count > 19, let ticks = Double(f[19]),
              let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) else { return nil }
        return boot + ticks / ticksPerSecond
    }
}
