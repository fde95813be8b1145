/// What `GET /stats` reports. Times are API seconds.
public struct SimulatorStats: Sendable, Hashable, Codable {
    public var apiTime: Double
    public var timeScale: Double
    public var tasksCreated: Int
    public var tasksInTable: Int
    public var createTaskCalls: Int
    public var getTaskResultCalls: Int
    public var getBalanceCalls: Int
    /// getTaskResult calls per task, over tasks polled at least once.
    public var callsPerTask: Summary
    public var tasksPolled: Int
    /// Solvable tasks whose ready state a poll has seen.
    public var tasksSeenReady: Int
    /// Unsolvable tasks whose failure a poll has seen.
    public var unsolvableSeen: Int
    /// ready answers (a task polled again after it was seen ready counts again).
    public var readyResponses: Int
    /// From a task becoming ready to the first poll that saw it ready.
    public var detectionDelay: Summary
    /// Polls of known tasks after their result window.
    public var callsAfterExpiry: Int
    /// Polls of ids the simulator never issued.
    public var unknownTaskCalls: Int
    /// Answers with errorId ≠ 0 (all endpoints, including injected ERROR_SERVICE_UNAVALIABLE).
    public var errorResponses: Int
    public var errorsByCode: [String: Int]
    public var bansTriggered: Int
    public var bannedResponses: Int
    public var banned: Bool
    public var faults: FaultCounts
    /// Callbacks (`SimulatorConfig.CallbackConfig`): drawn lost, sent twice, forged; and
    /// POSTs answered 2xx or not (counted by the sender as they end).
    public var callbacks: CallbackCounts

    public struct CallbackCounts: Sendable, Hashable, Codable {
        public var lost = 0
        public var duplicated = 0
        public var forged = 0
        public var delivered = 0
        public var failed = 0
    }

    public struct Summary: Sendable, Hashable, Codable {
        public var count: Int
        public var mean: Double
        public var p50: Double
        public var p99: Double
        public var max: Double

        public static let empty = Summary(count: 0, mean: 0, p50: 0, p99: 0, max: 0)

        /// Nearest-rank percentiles over `values`.
        public static func of(_ values: [Double]) -> Summary {
            guard !values.isEmpty else { return .empty }
            let sorted = values.sorted()
            func rank(_ p: Double) -> Double {
                let index = Int((p * Double(sorted.count)).rounded(.up)) - 1
                return sorted[Swift.min(Swift.max(index, 0), sorted.count - 1)]
            }
            return Summary(count: sorted.count, mean: sorted.reduce(0, +) / Double(sorted.count),
                           p50: rank(0.5), p99: rank(0.99), max: sorted[sorted.count - 1])
        }
    }

    public struct FaultCounts: Sendable, Hashable, Codable {
        public var dropped = 0
        public var http500 = 0
        public var http503 = 0
        public var http429 = 0
        public var serviceUnavailable = 0
        public var malformed = 0
        public var truncated = 0
        public var slow = 0
    }
}

/// Running counters kept by `SimulatorCore`.
struct SimCounters: Sendable, Hashable {
    var tasksCreated = 0
    var createTaskCalls = 0
    var getTaskResultCalls = 0
    var getBalanceCalls = 0
    var tasksSeenReady = 0
    var unsolvableSeen = 0
    var readyResponses = 0
    var callsAfterExpiry = 0
    var unknownTaskCalls = 0
    var errorResponses = 0
    var errorsByCode: [String: Int] = [:]
    var bansTriggered = 0
    var bannedResponses = 0
    var faults = SimulatorStats.FaultCounts()
    var callbacksLost = 0
    var callbacksDuplicated = 0
    var callbacksForged = 0
    var callbacksDelivered = 0
    var callbacksFailed = 0
}

extension SimulatorCore {
    /// A snapshot of the statistics at `now` (API seconds); the detection delay only of
    /// tasks seen ready at or after `detectedSince` when given (a bench's steady window).
    public func stats(now: Double, detectedSince: Double? = nil) -> SimulatorStats {
        var polls: [Double] = []
        polls.reserveCapacity(tasks.count + retiredPolls.count)
        for task in tasks.values where task.polls > 0 {
            polls.append(Double(task.polls))
        }
        polls.append(contentsOf: retiredPolls.lazy.map(Double.init))
        return SimulatorStats(
            apiTime: now,
            timeScale: config.timeScale,
            tasksCreated: counters.tasksCreated,
            tasksInTable: tasks.count,
            createTaskCalls: counters.createTaskCalls,
            getTaskResultCalls: counters.getTaskResultCalls,
            getBalanceCalls: counters.getBalanceCalls,
            callsPerTask: .of(polls),
            tasksPolled: polls.count,
            tasksSeenReady: counters.tasksSeenReady,
            unsolvableSeen: counters.unsolvableSeen,
            readyResponses: counters.readyResponses,
            detectionDelay: .of(detectedSince.map { since in
                zip(detectionDelays, detectionSeenAt).filter { $0.1 >= since }.map(\.0)
            } ?? detectionDelays),
            callsAfterExpiry: counters.callsAfterExpiry,
            unknownTaskCalls: counters.unknownTaskCalls,
            errorResponses: counters.errorResponses,
            errorsByCode: counters.errorsByCode,
            bansTriggered: counters.bansTriggered,
            bannedResponses: counters.bannedResponses,
            banned: isBanned(at: now),
            faults: counters.faults,
            callbacks: .init(lost: counters.callbacksLost, duplicated: counters.callbacksDuplicated, forged: counters.callbacksForged,
                             delivered: counters.callbacksDelivered, failed: counters.callbacksFailed)
        )
    }
}
