import TaskAPI
import Foundation
import DequeModule

/// The simulator's whole behaviour as a value type: the task table, the
/// provider rules and the statistics. It does no I/O and reads no clock —
/// callers pass `now` in API seconds — so every rule is unit-tested directly.
/// `SimulatorServer` keeps one behind a lock.
public struct SimulatorCore: Sendable {
    public private(set) var config: SimulatorConfig
    var tasks: [String: SimTask] = [:]
    var createdCount: UInt64 = 0
    var faultRandom: SplitMix64
    var validKeys: Set<String>?
    var zeroBalanceKeys: Set<String>
    var recentErrors: Deque<Double> = []
    var bannedUntil: Double?
    var counters = SimCounters()
    var detectionDelays: [Double] = []
    /// API time each detection delay was seen (same order).
    var detectionSeenAt: [Double] = []
    /// Poll counts of forgotten tasks that were polled, kept for `stats`.
    var retiredPolls: [Int32] = []
    var createdSincePurge = 0
    /// Callbacks planned by createTask and not yet taken by the sender (`takeCallbacks`).
    var pendingCallbacks: [CallbackDelivery] = []
    static let purgeEvery = 4096

    public init(config: SimulatorConfig = .init()) {
        self.config = config
        self.faultRandom = SplitMix64(seed: config.seed, stream: .max)
        self.validKeys = config.validKeys.map(Set.init)
        self.zeroBalanceKeys = Set(config.zeroBalanceKeys)
    }

    /// Replaces the configuration; tasks, statistics and random streams are kept.
    public mutating func apply(_ newConfig: SimulatorConfig) {
        config = newConfig
        validKeys = newConfig.validKeys.map(Set.init)
        zeroBalanceKeys = Set(newConfig.zeroBalanceKeys)
        if newConfig.ban == nil { bannedUntil = nil }
    }

    /// Forgets every task and statistic and restarts the random streams
    /// (optionally with a new configuration).
    public mutating func reset(config newConfig: SimulatorConfig? = nil) {
        self = SimulatorCore(config: newConfig ?? config)
    }

    /// Moves a task's creation and solve times `seconds` into the past, as if
    /// that much API time had passed for it (for expiry scenarios).
    public mutating func advanceForTesting(taskId: String, by seconds: Double) {
        guard var task = tasks[taskId] else { return }
        task.createdAt -= seconds
        task.readyAt -= seconds
        tasks[taskId] = task
    }

    /// Forgets tasks created more than `resultWindow + retainAfterWindow` ago.
    public mutating func purge(now: Double) {
        createdSincePurge = 0
        let cutoff = now - config.resultWindow - config.retainAfterWindow
        let old = tasks.filter { $0.value.createdAt < cutoff }
        guard !old.isEmpty else { return }
        for (id, task) in old {
            if task.polls > 0 { retiredPolls.append(Int32(clamping: task.polls)) }
            tasks.removeValue(forKey: id)
        }
    }

    /// Number of tasks in the table.
    public var taskCount: Int { tasks.count }

    // MARK: - keys and ban

    /// Checks the ban and the key; returns the error to answer, if any.
    mutating func admit(clientKey: String, now: Double) -> SimProviderError? {
        if let until = bannedUntil {
            if now < until {
                counters.bannedResponses += 1
                return .ipBanned
            }
            bannedUntil = nil
        }
        if let valid = validKeys, !valid.contains(clientKey) { return .keyDoesNotExist }
        if zeroBalanceKeys.contains(clientKey) { return .zeroBalance }
        return nil
    }

    /// Counts an error response and applies the ban rule.
    mutating func record(_ error: SimProviderError, now: Double) {
        counters.errorResponses += 1
        counters.errorsByCode[error.code, default: 0] += 1
        guard error.countsForBan, let rule = config.ban else { return }
        recentErrors.append(now)
        while let first = recentErrors.first, first <= now - rule.window {
            recentErrors.removeFirst()
        }
        if recentErrors.count > rule.maxErrors {
            bannedUntil = now + rule.duration
            counters.bansTriggered += 1
            recentErrors.removeAll()
        }
    }

    /// Whether the ban is in force at `now`.
    public func isBanned(at now: Double) -> Bool {
        bannedUntil.map { now < $0 } ?? false
    }

    // MARK: - createTask

    public enum CreateReply: Sendable, Hashable {
        case created(taskIds: [String])
        case error(SimProviderError)
    }

    /// createTask / bulk create: `count` new tasks whose solve times follow the configuration.
    public mutating func createTasks(clientKey: String, count: Int = 1, callbackUrl: String? = nil, now: Double) -> CreateReply {
        counters.createTaskCalls += 1
        if let error = admit(clientKey: clientKey, now: now) {
            record(error, now: now)
            return .error(error)
        }
        var ids: [String] = []
        ids.reserveCapacity(count)
        for _ in 0..<max(0, count) {
            ids.append(insertTask(now: now, forced: nil, callbackUrl: callbackUrl))
        }
        return .created(taskIds: ids)
    }

    /// Creates one task with an explicit solve time (API seconds from now) and fate,
    /// bypassing key checks — for tests and scenarios.
    public mutating func createTask(solveTime: Double, unsolvable: Bool = false, now: Double) -> String {
        insertTask(now: now, forced: (solveTime, unsolvable), callbackUrl: nil)
    }

    private mutating func insertTask(now: Double, forced: (Double, Bool)?, callbackUrl: String?) -> String {
        let index = createdCount
        createdCount += 1
        var random = SplitMix64(seed: config.seed, stream: index)
        let id = SimulatorCore.taskId(index: index, style: config.taskIdStyle, random: &random)
        let solveTime: Double
        let unsolvable: Bool
        if let (forcedTime, forcedFate) = forced {
            solveTime = forcedTime
            unsolvable = forcedFate
        } else {
            solveTime = config.solveTime.draw(&random)
            unsolvable = random.chance(config.unsolvableFraction)
        }
        tasks[id] = SimTask(createdAt: now, readyAt: now + solveTime, unsolvable: unsolvable)
        if let url = callbackUrl ?? config.callbacks.url {
            planCallbacks(taskId: id, index: index, url: url, createdAt: now, readyAt: now + solveTime, unsolvable: unsolvable)
        }
        counters.tasksCreated += 1
        createdSincePurge += 1
        if createdSincePurge >= SimulatorCore.purgeEvery {
            purge(now: now)
        }
        return id
    }

    static func taskId(index: UInt64, style: SimulatorConfig.TaskIdStyle, random: inout SplitMix64) -> String {
        switch style {
        case .integer:
            return String(3_000_000_000 as UInt64 + index)
        case .uuid:
            var bytes = [UInt8](repeating: 0, count: 16)
            let a = random.next(), b = random.next()
            for i in 0..<8 {
                bytes[i] = UInt8(truncatingIfNeeded: a >> (8 * i))
                bytes[8 + i] = UInt8(truncatingIfNeeded: b >> (8 * i))
            }
            bytes[6] = (bytes[6] & 0x0F) | 0x40 // version 4
            bytes[8] = (bytes[8] & 0x3F) | 0x80 // RFC 4122 variant
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            var out: [UInt8] = []
            out.reserveCapacity(36)
            for (i, byte) in bytes.enumerated() {
                if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    // MARK: - getTaskResult

    public enum ResultReply: Sendable, Hashable {
        case processing
        /// Solved; times are API seconds (creation and solve).
        case ready(createdAt: Double, readyAt: Double)
        case error(SimProviderError)
    }

    /// One getTaskResult call (after fault injection, which the server applies).
    public mutating func getTaskResult(clientKey: String, taskId: String, now: Double) -> ResultReply {
        counters.getTaskResultCalls += 1
        if let error = admit(clientKey: clientKey, now: now) {
            record(error, now: now)
            return .error(error)
        }
        let reply = pollTask(taskId, now: now)
        if case .error(let error) = reply { record(error, now: now) }
        return reply
    }

    private mutating func pollTask(_ taskId: String, now: Double) -> ResultReply {
        guard var task = tasks[taskId] else {
            counters.unknownTaskCalls += 1
            return .error(.taskIdInvalid)
        }
        defer { tasks[taskId] = task }
        task.polls += 1
        let previousPoll = task.lastPollAt
        task.lastPollAt = now
        if now - task.createdAt > config.resultWindow {
            counters.callsAfterExpiry += 1
            return .error(.taskIdInvalid)
        }
        if let cap = config.maxPollsPerTask, task.polls > cap {
            return .error(.taskIdInvalid)
        }
        if let interval = config.minPollInterval, let previous = previousPoll, now - previous < interval {
            return .error(.tooMuchRequests)
        }
        guard now >= task.readyAt else { return .processing }
        if !task.seenReady {
            task.seenReady = true
            if task.unsolvable {
                counters.unsolvableSeen += 1
            } else {
                counters.tasksSeenReady += 1
                detectionDelays.append(now - task.readyAt)
                detectionSeenAt.append(now)
            }
        }
        if task.unsolvable { return .error(.captchaUnsolvable) }
        counters.readyResponses += 1
        return .ready(createdAt: task.createdAt, readyAt: task.readyAt)
    }

    /// Counts a getTaskResult call that a fault answered before the rules ran.
    public mutating func countFaultedCall() {
        counters.getTaskResultCalls += 1
    }

    // MARK: - getBalance

    public enum BalanceReply: Sendable, Hashable {
        case balance(Double)
        case error(SimProviderError)
    }

    public mutating func getBalance(clientKey: String, now: Double) -> BalanceReply {
        counters.getBalanceCalls += 1
        if let error = admit(clientKey: clientKey, now: now) {
            record(error, now: now)
            return .error(error)
        }
        return .balance(config.balance)
    }

    // MARK: - faults

    /// Draws this request's faults from the fault stream and counts them.
    public mutating func drawFaults() -> FaultDecision {
        let f = config.faults
        guard !f.isQuiet else { return FaultDecision() }
        var d = FaultDecision()
        if faultRandom.chance(f.slowProbability) {
            d.delayReal = f.slowDelayReal
            counters.faults.slow += 1
        }
        if faultRandom.chance(f.dropProbability) {
            d.kind = .drop
            counters.faults.dropped += 1
        } else if faultRandom.chance(f.http500Probability) {
            d.kind = .http(500)
            counters.faults.http500 += 1
        } else if faultRandom.chance(f.http503Probability) {
            d.kind = .http(503)
            counters.faults.http503 += 1
        } else if faultRandom.chance(f.http429Probability) {
            d.kind = .tooManyRequests(retryAfter: f.retryAfterSeconds)
            counters.faults.http429 += 1
        } else if faultRandom.chance(f.serviceUnavailableProbability) {
            d.kind = .serviceUnavailable
            counters.faults.serviceUnavailable += 1
            counters.errorResponses += 1
            counters.errorsByCode[SimProviderError.serviceUnavailable.code, default: 0] += 1
        } else if faultRandom.chance(f.malformedProbability) {
            d.kind = .malformed
            counters.faults.malformed += 1
        } else if faultRandom.chance(f.truncatedProbability) {
            d.kind = .truncated
            counters.faults.truncated += 1
        }
        return d
    }
}

/// One task in the table.
struct SimTask: Sendable, Hashable {
    var createdAt: Double
    var readyAt: Double
    var unsolvable: Bool
    var polls: Int = 0
    var lastPollAt: Double? = nil
    var seenReady = false
}

/// What fault injection decided for one request.
public struct FaultDecision: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case none
        case drop
        case http(Int)
        case tooManyRequests(retryAfter: Int)
        case serviceUnavailable
        case malformed
        case truncated
    }

    public var kind: Kind = .none
    /// Real seconds to wait before answering (or dropping).
    public var delayReal: Double? = nil
}

extension SimulatorConfig.SolveTimeDistribution {
    /// A solve time in API seconds, clipped to [min, max]; the bench draws from it too.
    public func draw(_ random: inout SplitMix64) -> Double {
        let raw: Double
        switch kind {
        case .fixed: raw = median
        case .lognormal: raw = median * exp(sigma * random.normal())
        }
        return Swift.min(Swift.max(raw, min), max)
    }
}
