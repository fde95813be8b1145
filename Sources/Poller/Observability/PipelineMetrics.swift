import Kafka
import Metrics
import NIOConcurrencyHelpers
import class Prometheus.PrometheusCollectorRegistry
import struct Prometheus.PrometheusMetricsFactory
import TaskAPI

/// The pipeline's metrics, emitted through swift-metrics into a Prometheus registry of
/// its own (one per pipeline, so tests and several pipelines in one process never share
/// series). The driver calls the event methods below; the gauges that describe state
/// (in flight, paused, ban, assignment) are sampled from the engine at scrape time by
/// `Pipeline.refreshMetrics()`.
///
/// Label values are closed sets (outcome classes, reason codes) or topic names and
/// partition numbers: never a clientKey, a fingerprint or a taskId.
public final class PipelineMetrics: Sendable {
    /// Metric names (Prometheus conventions: `ezpoll_` prefix, `_total` counters, `_seconds` durations).
    public enum Name {
        public static let recordsConsumed = "ezpoll_records_consumed_total"
        public static let deadLetters = "ezpoll_dead_letters_total"
        public static let tasksSolved = "ezpoll_tasks_solved_total"
        public static let taskFailures = "ezpoll_task_failures_total"
        public static let polls = "ezpoll_polls_total"
        public static let httpRequestDuration = "ezpoll_http_request_duration_seconds"
        public static let resultsPublished = "ezpoll_results_published_total"
        public static let publishErrors = "ezpoll_publish_errors_total"
        public static let creationToResult = "ezpoll_creation_to_result_seconds"
        public static let tokenLifeLeft = "ezpoll_solution_token_life_left_seconds"
        public static let expiredSolutions = "ezpoll_solutions_expired_total"
        public static let spend = "ezpoll_spend_total"
        public static let accountBalance = "ezpoll_account_balance"
        public static let balanceCheckFailures = "ezpoll_balance_check_failures_total"
        public static let callbacks = "ezpoll_callbacks_total"
        public static let callbackRelay = "ezpoll_callback_relay_total"
        public static let providerSolveTime = "ezpoll_provider_solve_seconds"
        public static let pollsPerTask = "ezpoll_polls_per_task"
        public static let ipBans = "ezpoll_ip_bans_total"
        public static let accountsDisabledTotal = "ezpoll_accounts_disabled_total"
        public static let kafkaClientEvents = "ezpoll_kafka_client_events_total"
        public static let tasksInFlight = "ezpoll_tasks_in_flight"
        public static let inputHeld = "ezpoll_input_held_records"
        public static let inFlightLimit = "ezpoll_in_flight_limit"
        public static let callsInProgress = "ezpoll_calls_in_progress"
        public static let inputPaused = "ezpoll_input_paused"
        public static let pausedPartitions = "ezpoll_paused_partitions"
        public static let assignedPartitions = "ezpoll_assigned_partitions"
        public static let ipBanActive = "ezpoll_ip_ban_active"
        public static let ipBanRemaining = "ezpoll_ip_ban_remaining_seconds"
        public static let accountsDisabled = "ezpoll_accounts_disabled"
        public static let pollSlowdown = "ezpoll_poll_slowdown_factor"
        public static let callRateLimit = "ezpoll_call_rate_limit"
        public static let callBudgetUsed = "ezpoll_call_budget_used_ratio"
        public static let pollLateness = "ezpoll_poll_lateness_seconds"
        public static let brokersDown = "ezpoll_kafka_brokers_down"
        public static let ready = "ezpoll_ready"
        public static let watermarkLag = "ezpoll_partition_watermark_lag"
        public static let consumedOffset = "ezpoll_partition_consumed_offset"
        public static let committedOffset = "ezpoll_partition_committed_offset"
        public static let finishedAboveCommitted = "ezpoll_partition_finished_above_committed"
        public static let commitStall = "ezpoll_partition_commit_stall_seconds"
        public static let brokerLag = "ezpoll_partition_broker_lag"
        public static let commitMetadataFill = "ezpoll_partition_commit_metadata_fill_ratio"
        public static let commitMetadataTruncated = "ezpoll_commit_metadata_truncated_total"
    }

    /// The class of one getTaskResult answer (the `outcome` label).
    public enum OutcomeClass: String, CaseIterable, Sendable {
        case processing, ready, transient
        case taskError = "task_error"
        case accountError = "account_error"
        case ipBanned = "ip_banned"

        public init(_ outcome: TaskOutcome) {
            switch outcome {
            case .processing: self = .processing
            case .ready: self = .ready
            case .failed(.transient, _, _, _): self = .transient
            case .failed(.task, _, _, _), .failed(.unknownTask, _, _, _): self = .taskError
            case .failed(.account, _, _, _): self = .accountError
            case .failed(.ban, _, _, _): self = .ipBanned
            }
        }
    }

    /// Where the Kafka clients stand, as far as readiness cares.
    public struct KafkaState: Sendable, Hashable {
        /// librdkafka reported all brokers down and nothing has reached a broker since.
        public var brokersDown = false
        /// A fatal client error (the instance cannot go on).
        public var fatalError: String?
    }

    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    private let recordsConsumed: Counter
    private let deadLetters: [DeadLetterReason.Code: Counter]
    private let tasksSolved: Counter
    private let taskFailures: [FailureReason: Counter]
    private let polls: [OutcomeClass: Counter]
    private let httpRequestDuration: [OutcomeClass: Timer]
    private let solvedLatency: Timer
    private let failedLatency: Timer
    private let commitMetadataTruncated: Counter
    private let tokenLifeLeft: Timer
    private let expiredSolutions: Counter
    private let ipBans: Counter
    private let accountsDisabledTotal: Counter
    let tasksInFlight: Gauge
    let inputHeld: Gauge
    let inFlightLimit: Gauge
    let callsInProgress: Gauge
    let inputPaused: Gauge
    let pausedPartitions: Gauge
    let assignedPartitions: Gauge
    let ipBanActive: Gauge
    let ipBanRemaining: Gauge
    let accountsDisabled: Gauge
    let pollSlowdown: Gauge
    let callRateLimit: Gauge
    let callBudgetUsed: Gauge
    let brokersDown: Gauge
    let ready: Gauge

    private struct PartitionState {
        var consumedEnd: Int64
        var stored: Int64?
        var finishedAbove: Int64 = 0
        /// When the committed offset last moved (or the partition was assigned).
        var lastAdvance: ContinuousClock.Instant
        var lag: Gauge
        var consumed: Gauge
        var storedGauge: Gauge
        var finishedAboveGauge: Gauge
        var stallGauge: Gauge
        var metadataFillGauge: Gauge

        var gauges: [Gauge] { [lag, consumed, storedGauge, finishedAboveGauge, stallGauge, metadataFillGauge] }

        /// How long the committed offset has not moved while consumed records wait above
        /// it; zero when nothing waits.
        func stall(now: ContinuousClock.Instant) -> Duration {
            guard let stored, consumedEnd > stored else { return .zero }
            return now - lastAdvance
        }
    }

    /// A partition whose committed offset has not moved for a while although records wait.
    public struct Stall: Sendable, Hashable {
        public var partition: TopicPartition
        public var committedOffset: Int64
        public var duration: Duration
    }

    /// What changes after startup, under one lock.
    private struct Mutable {
        var partitions: [TopicPartition: PartitionState] = [:]
        var published: [String: Counter] = [:]
        var publishErrors: [String: Counter] = [:]
        var kafkaEvents: [String: Counter] = [:]
        var kafka = KafkaState()
        var lifecycle = PipelineHealth.Lifecycle.starting
        var probing = false
        var banUntil: Timestamp?
        /// Calls started and when, at the last scrape (for the budget-use ratio).
        var lastCallSample: (calls: Int, at: ContinuousClock.Instant)?
        /// The engine's poll-lateness histogram at the last scrape (rendered at export).
        var pollLateness = PollLateness()
        /// Spend and polls per task by provider and task type, solve time by provider.
        var spend: [TaskTypeLabels: FloatingPointCounter] = [:]
        var pollsPerTask: [TaskTypeLabels: Recorder] = [:]
        var providerSolveTime: [String: Timer] = [:]
        var taskTypeLabels: Set<String> = []
        var balances: [String: Gauge] = [:]
        var brokerLag: [TopicPartition: Gauge] = [:]
        var balanceFailures: [String: Counter] = [:]
        var callbacks: [String: Counter] = [:]
        var callbackRelay: [String: Counter] = [:]
    }

    struct TaskTypeLabels: Hashable {
        var provider: String
        var taskType: String
        var dimensions: [(String, String)] { [("provider", provider), ("task_type", taskType)] }
    }

    private let mutable = NIOLockedValueBox(Mutable())

    /// Buckets of `ezpoll_http_request_duration_seconds`.
    public static let httpBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2_500), .seconds(5), .seconds(10), .seconds(30),
    ]
    /// Buckets of `ezpoll_solution_token_life_left_seconds`: what is left of a token's
    /// lifetime (120 s for reCAPTCHA, 300 s for Turnstile) when its solution is published.
    public static let tokenLifeLeftBuckets: [Duration] = [
        .seconds(1), .seconds(5), .seconds(10), .seconds(20), .seconds(30), .seconds(60), .seconds(90),
        .seconds(110), .seconds(120), .seconds(180), .seconds(240), .seconds(290), .seconds(300),
    ]
    /// Buckets of `ezpoll_provider_solve_seconds` (the provider's own clock, whole seconds).
    public static let providerSolveBuckets: [Duration] = [
        .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(15), .seconds(20), .seconds(30), .seconds(45),
        .seconds(60), .seconds(90), .seconds(120), .seconds(180), .seconds(300),
    ]
    /// Buckets of `ezpoll_polls_per_task`.
    public static let pollsPerTaskBuckets: [Double] = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 60, 120]
    /// Most distinct `task_type` label values; later task types count as `other`, so a
    /// producer sending free-form task types cannot grow the exposition without end.
    public static let maxTaskTypeLabels = 32

    /// Buckets of `ezpoll_creation_to_result_seconds` (results come in 10–80 s; the window is 300 s).
    public static let creationToResultBuckets: [Duration] = [
        .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(15),
        .seconds(20), .seconds(30), .seconds(45), .seconds(60), .seconds(90), .seconds(120), .seconds(180),
        .seconds(240), .seconds(300), .seconds(600),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            Name.httpRequestDuration: Self.httpBuckets,
            Name.creationToResult: Self.creationToResultBuckets,
            Name.tokenLifeLeft: Self.tokenLifeLeftBuckets,
            Name.providerSolveTime: Self.providerSolveBuckets,
        ]
        factory.valueHistogramBuckets = [Name.pollsPerTask: Self.pollsPerTaskBuckets]
        self.factory = factory
        func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: name, dimensions: dimensions, factory: factory)
        }
        func gauge(_ name: String) -> Gauge {
            let gauge = Gauge(label: name, factory: factory)
            gauge.record(0)
            return gauge
        }
        recordsConsumed = counter(Name.recordsConsumed)
        deadLetters = Dictionary(uniqueKeysWithValues: DeadLetterReason.Code.allCases.map {
            ($0, counter(Name.deadLetters, [("reason", $0.rawValue)]))
        })
        tasksSolved = counter(Name.tasksSolved)
        taskFailures = Dictionary(uniqueKeysWithValues: FailureReason.allCases.map {
            ($0, counter(Name.taskFailures, [("reason", $0.rawValue)]))
        })
        polls = Dictionary(uniqueKeysWithValues: OutcomeClass.allCases.map {
            ($0, counter(Name.polls, [("outcome", $0.rawValue)]))
        })
        httpRequestDuration = Dictionary(uniqueKeysWithValues: OutcomeClass.allCases.map {
            ($0, Timer(label: Name.httpRequestDuration, dimensions: [("outcome", $0.rawValue)], factory: factory))
        })
        solvedLatency = Timer(label: Name.creationToResult, dimensions: [("result", "solved")], factory: factory)
        failedLatency = Timer(label: Name.creationToResult, dimensions: [("result", "failed")], factory: factory)
        tokenLifeLeft = Timer(label: Name.tokenLifeLeft, factory: factory)
        expiredSolutions = counter(Name.expiredSolutions)
        ipBans = counter(Name.ipBans)
        commitMetadataTruncated = counter(Name.commitMetadataTruncated)
        accountsDisabledTotal = counter(Name.accountsDisabledTotal)
        tasksInFlight = gauge(Name.tasksInFlight)
        inputHeld = gauge(Name.inputHeld)
        inFlightLimit = gauge(Name.inFlightLimit)
        callsInProgress = gauge(Name.callsInProgress)
        inputPaused = gauge(Name.inputPaused)
        pausedPartitions = gauge(Name.pausedPartitions)
        assignedPartitions = gauge(Name.assignedPartitions)
        ipBanActive = gauge(Name.ipBanActive)
        ipBanRemaining = gauge(Name.ipBanRemaining)
        accountsDisabled = gauge(Name.accountsDisabled)
        pollSlowdown = gauge(Name.pollSlowdown)
        pollSlowdown.record(1)
        callRateLimit = gauge(Name.callRateLimit)
        callBudgetUsed = gauge(Name.callBudgetUsed)
        callBudgetUsed.record(0)
        brokersDown = gauge(Name.brokersDown)
        ready = gauge(Name.ready)
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        enrichedExposition(registryText: String(decoding: registry.emitToBuffer(), as: UTF8.self))
    }

    private func withLock<R>(_ body: (inout Mutable) -> R) -> R {
        mutable.withLockedValue(body)
    }

    // MARK: Events from the driver

    /// A batch of input records arrived (before decoding).
    func consumed(_ batch: [KafkaRecord], now: ContinuousClock.Instant = .now) {
        guard !batch.isEmpty else { return }
        recordsConsumed.increment(by: batch.count)
        var ends: [TopicPartition: Int64] = [:]
        for record in batch {
            ends[record.topicPartition] = max(ends[record.topicPartition] ?? .min, record.offset + 1)
        }
        withLock { m in
            m.kafka.brokersDown = false // data came from a broker
            for (partition, end) in ends {
                if var state = m.partitions[partition] {
                    state.consumedEnd = max(state.consumedEnd, end)
                    m.partitions[partition] = state
                } else {
                    // The first record read after assignment starts where the last owner's watermark was.
                    let first = batch.lazy.filter { $0.topicPartition == partition }.map(\.offset).min() ?? end
                    m.partitions[partition] = makePartitionState(partition, consumedEnd: end, stored: first, now: now)
                }
                Self.updateOffsetGauges(m.partitions[partition])
            }
        }
    }

    /// These commits (offset next to read, finished offsets above it) were acknowledged by
    /// the broker; their metadata fills `metadataMaxBytes` (`--commit-metadata-max-bytes`) to a share.
    func committed(_ commits: [OffsetTracker.Commit], metadataMaxBytes: Int, now: ContinuousClock.Instant = .now) {
        withLock { m in
            for commit in commits {
                let partition = TopicPartition(commit.partition.topic, commit.partition.partition)
                guard var state = m.partitions[partition] else { continue }
                if commit.offset > (state.stored ?? .min) { state.lastAdvance = now }
                state.stored = commit.offset
                state.finishedAbove = commit.finishedAbove
                m.partitions[partition] = state
                Self.updateOffsetGauges(m.partitions[partition])
                state.metadataFillGauge.record(metadataMaxBytes > 0 ? Double(commit.metadata.utf8.count) / Double(metadataMaxBytes) : 0)
                if commit.truncated { commitMetadataTruncated.increment() }
            }
        }
    }

    /// Partitions were revoked: their series go away (the new owner reports them).
    func revoked(_ revoked: [TopicPartition]) {
        let (states, lags) = withLock { m in
            (revoked.compactMap { m.partitions.removeValue(forKey: $0) }, revoked.compactMap { m.brokerLag.removeValue(forKey: $0) })
        }
        for state in states {
            state.gauges.forEach { $0.destroy() }
        }
        lags.forEach { $0.destroy() }
    }

    /// Every assigned partition's stall now (its gauge updated), longest first.
    func stalls(now: ContinuousClock.Instant = .now) -> [Stall] {
        withLock { m in
            m.partitions.map { partition, state in
                let stall = state.stall(now: now)
                state.stallGauge.record(Double(stall.components.seconds) + Double(stall.components.attoseconds) / 1e18)
                return Stall(partition: partition, committedOffset: state.stored ?? 0, duration: stall)
            }
        }.sorted { $0.duration > $1.duration }
    }

    /// Partitions were assigned: the group coordinator answered.
    func assigned() {
        withLock { m in m.kafka.brokersDown = false }
    }

    private func makePartitionState(_ partition: TopicPartition, consumedEnd: Int64, stored: Int64?,
                                    now: ContinuousClock.Instant) -> PartitionState {
        let dimensions = [("topic", partition.topic), ("partition", String(partition.partition))]
        return PartitionState(
            consumedEnd: consumedEnd, stored: stored, lastAdvance: now,
            lag: Gauge(label: Name.watermarkLag, dimensions: dimensions, factory: factory),
            consumed: Gauge(label: Name.consumedOffset, dimensions: dimensions, factory: factory),
            storedGauge: Gauge(label: Name.committedOffset, dimensions: dimensions, factory: factory),
            finishedAboveGauge: Gauge(label: Name.finishedAboveCommitted, dimensions: dimensions, factory: factory),
            stallGauge: Gauge(label: Name.commitStall, dimensions: dimensions, factory: factory),
            metadataFillGauge: Gauge(label: Name.commitMetadataFill, dimensions: dimensions, factory: factory))
    }

    /// Under the lock.
    private static func updateOffsetGauges(_ state: PartitionState?) {
        guard let state else { return }
        state.consumed.record(state.consumedEnd)
        if let stored = state.stored {
            state.storedGauge.record(stored)
            state.finishedAboveGauge.record(state.finishedAbove)
            state.lag.record(max(0, state.consumedEnd - stored - state.finishedAbove))
        } else {
            state.lag.record(0)
        }
    }

    /// One getTaskResult call finished after `duration`.
    func polled(_ outcome: TaskOutcome, duration: Duration) {
        let outcomeClass = OutcomeClass(outcome)
        polls[outcomeClass]?.increment()
        let (seconds, attoseconds) = duration.components
        httpRequestDuration[outcomeClass]?.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// A task ended (its output is being published); `createdAt` is the task's creation time.
    func finished(failure: FailureReason?, createdAt: Timestamp, now: Timestamp) {
        if let failure {
            taskFailures[failure]?.increment()
        } else {
            tasksSolved.increment()
        }
        let milliseconds = max(0, now.millisecondsSinceEpoch - createdAt.millisecondsSinceEpoch)
        (failure == nil ? solvedLatency : failedLatency).recordMilliseconds(milliseconds)
    }

    /// A solution goes out: what is left of its token's lifetime (nothing for a task type
    /// without a known lifetime); one whose token has expired is counted apart.
    func solutionPublished(expiresAt: Timestamp?, now: Timestamp) {
        guard let expiresAt else { return }
        let left = expiresAt.millisecondsSinceEpoch - now.millisecondsSinceEpoch
        if left <= 0 { expiredSolutions.increment() }
        tokenLifeLeft.recordMilliseconds(max(0, left))
    }

    /// A task ended (solution or failure): its polls by provider and task type, and for a
    /// solution what its answer said it cost and how long the provider took.
    func taskEnded(provider: String, taskType: String?, polls: Int, receipt: SolveReceipt?) {
        let (recorder, spend, solveTime) = withLock { m -> (Recorder, FloatingPointCounter?, Timer?) in
            let labels = TaskTypeLabels(provider: provider, taskType: Self.taskTypeLabel(taskType, seen: &m.taskTypeLabels))
            let recorder = Self.cached(labels, in: &m.pollsPerTask) {
                Recorder(label: Name.pollsPerTask, dimensions: labels.dimensions, factory: factory)
            }
            let spend = receipt?.costValue == nil ? nil : Self.cached(labels, in: &m.spend) {
                FloatingPointCounter(label: Name.spend, dimensions: labels.dimensions, factory: factory)
            }
            let solveTime = receipt?.providerSolveTime == nil ? nil : Self.cached(provider, in: &m.providerSolveTime) {
                Timer(label: Name.providerSolveTime, dimensions: [("provider", provider)], factory: factory)
            }
            return (recorder, spend, solveTime)
        }
        recorder.record(polls)
        if let cost = receipt?.costValue { spend?.increment(by: cost) }
        if let time = receipt?.providerSolveTime { solveTime?.recordNanoseconds(Int64(time.components.seconds) * 1_000_000_000) }
    }

    /// The broker-side lag of these partitions; series of partitions no longer assigned go.
    func brokerLag(_ lags: [TopicPartition: Int64], assigned: Set<TopicPartition>) {
        let (gauges, gone) = withLock { m -> ([(Gauge, Int64)], [Gauge]) in
            let gone = m.brokerLag.filter { !assigned.contains($0.key) }
            for partition in gone.keys { m.brokerLag[partition] = nil }
            let gauges = lags.filter { assigned.contains($0.key) }.map { partition, lag in
                (Self.cached(partition, in: &m.brokerLag) {
                    Gauge(label: Name.brokerLag, dimensions: [("topic", partition.topic), ("partition", String(partition.partition))], factory: factory)
                }, lag)
            }
            return (gauges, Array(gone.values))
        }
        for (gauge, lag) in gauges { gauge.record(lag) }
        for gauge in gone { gauge.destroy() }
    }

    /// An account's balance, by provider and key fingerprint (never the key).
    func balance(provider: String, key fingerprint: String, _ balance: Double) {
        let gauge = withLock { m in
            Self.cached("\(provider)/\(fingerprint)", in: &m.balances) {
                Gauge(label: Name.accountBalance, dimensions: [("provider", provider), ("key", fingerprint)], factory: factory)
            }
        }
        gauge.record(balance)
    }

    /// A getBalance call gave no balance.
    func balanceCheckFailed(provider: String) {
        withLock { m in
            Self.cached(provider, in: &m.balanceFailures) {
                Counter(label: Name.balanceCheckFailures, dimensions: [("provider", provider)], factory: factory)
            }
        }.increment()
    }

    /// A provider callback and what it did (`CallbackReceiver`): `provider` is a route's
    /// name or `unknown`, `result` a `CallbackVerdict` or a `ProviderCallback.Rejection`,
    /// `via` `http` or `relay`.
    func callback(provider: String, result: String, via: String = "http") {
        withLock { m in
            Self.cached("\(provider)/\(result)/\(via)", in: &m.callbacks) {
                Counter(label: Name.callbacks, dimensions: [("provider", provider), ("result", result), ("via", via)], factory: factory)
            }
        }.increment()
    }

    /// A callback written to the relay topic (`sent`) or read from it, and whether that worked.
    func callbackRelayed(sent: Bool, success: Bool) {
        let direction = sent ? "sent" : "received", outcome = success ? "ok" : "failed"
        withLock { m in
            Self.cached("\(direction)/\(outcome)", in: &m.callbackRelay) {
                Counter(label: Name.callbackRelay, dimensions: [("direction", direction), ("outcome", outcome)], factory: factory)
            }
        }.increment()
    }

    /// The metric for `key` in `cache`, made on first use.
    private static func cached<Key: Hashable, Metric>(_ key: Key, in cache: inout [Key: Metric], _ make: () -> Metric) -> Metric {
        if let existing = cache[key] { return existing }
        let made = make()
        cache[key] = made
        return made
    }

    /// The `task_type` label: the task type itself for the first `maxTaskTypeLabels`
    /// seen, then `other`; `none` without one.
    static func taskTypeLabel(_ taskType: String?, seen: inout Set<String>) -> String {
        guard let taskType, !taskType.isEmpty else { return "none" }
        if seen.contains(taskType) { return taskType }
        guard seen.count < maxTaskTypeLabels else { return "other" }
        seen.insert(taskType)
        return taskType
    }

    func deadLettered(_ code: DeadLetterReason.Code) {
        deadLetters[code]?.increment()
    }

    /// The broker acknowledged an output on `topic` (or refused it).
    func delivered(topic: String, success: Bool) {
        let counter = withLock { m -> Counter in
            if success { m.kafka.brokersDown = false }
            let name = success ? Name.resultsPublished : Name.publishErrors
            return success
                ? Self.cached(topic, in: &m.published) { Counter(label: name, dimensions: [("topic", topic)], factory: factory) }
                : Self.cached(topic, in: &m.publishErrors) { Counter(label: name, dimensions: [("topic", topic)], factory: factory) }
        }
        counter.increment()
    }

    /// An IP-ban pause began or was extended until `until`; counts distinct pauses only.
    func ipBanned(until: Timestamp, now: Timestamp) {
        let isNew = withLock { m -> Bool in
            defer { m.banUntil = until }
            return m.banUntil.map { $0 <= now } ?? true
        }
        if isNew { ipBans.increment() }
    }

    func accountDisabled() { accountsDisabledTotal.increment() }

    /// librdkafka's client events (wired into the consumer's and producer's event handler).
    public func kafkaEvent(_ event: KafkaClientEvent) {
        let kind: String
        switch event {
        case .error: kind = "error"
        case .allBrokersDown: kind = "all_brokers_down"
        case .fatal: kind = "fatal"
        }
        let counter = withLock { m -> Counter in
            switch event {
            case .allBrokersDown: m.kafka.brokersDown = true
            case .fatal(let error): m.kafka.fatalError = error.message
            case .error: break
            }
            return Self.cached(kind, in: &m.kafkaEvents) {
                Counter(label: Name.kafkaClientEvents, dimensions: [("event", kind)], factory: factory)
            }
        }
        counter.increment()
    }

    public var kafkaState: KafkaState { withLock { m in m.kafka } }

    // MARK: Lifecycle (for readiness)

    /// `run()` subscribed.
    func started() { withLock { m in m.lifecycle = .running } }
    /// `shutdown()` was requested or `run()` returned.
    func stopping() { withLock { m in m.lifecycle = .stopping } }
    var currentLifecycle: PipelineHealth.Lifecycle { withLock { m in m.lifecycle } }

    /// Samples the call budget: the allowed rate now, and the share of it used by the
    /// calls started since the last scrape.
    func sampleCallBudget(callsStarted: Int, allowedPerSecond: Double, lateness: PollLateness) {
        let now = ContinuousClock.now
        let used = withLock { m -> Double? in
            defer { m.lastCallSample = (callsStarted, now); m.pollLateness = lateness }
            guard let last = m.lastCallSample else { return nil }
            let elapsed = (now - last.at).inSeconds
            guard elapsed >= 0.5, allowedPerSecond > 0 else { return nil }
            return Double(callsStarted - last.calls) / elapsed / allowedPerSecond
        }
        callRateLimit.record(allowedPerSecond)
        if let used { callBudgetUsed.record(used) }
    }

    /// The poll-lateness histogram as sampled at the last scrape.
    var pollLatenessSample: PollLateness { withLock { m in m.pollLateness } }

    /// Claims the one broker probe that may run at a time; false if one is running.
    func beginProbe() -> Bool {
        withLock { m in
            if m.probing { return false }
            m.probing = true
            return true
        }
    }

    func endProbe(reached: Bool) {
        withLock { m in
            m.probing = false
            if reached { m.kafka.brokersDown = false }
        }
    }

    /// Per-partition watermark lag: records consumed at or above the committed offset
    /// and not recorded finished in the commit (what a crash would process again).
    public var watermarkLag: [TopicPartition: Int64] {
        withLock { m in m.partitions.mapValues { max(0, $0.consumedEnd - ($0.stored ?? $0.consumedEnd) - $0.finishedAbove) } }
    }
}
