import DequeModule
import TaskModel
/// The whole pipeline's logic with no I/O: task intake, scheduling, limits,
/// result publication and offset storing, as one state machine.
///
/// The driver owns one engine behind a lock, feeds it events and performs the
/// returned `Action`s after releasing the lock (async-http-client's pool style):
///
/// | event | call |
/// |---|---|
/// | partitions assigned (rebalance callback), with their committed offsets | `assigned(_:)` |
/// | partitions revoked: stop their work, wait while `busyCount(in:)` > 0, then commit | `revoking(_:)`, `revoked(_:lost:)` |
/// | a record was consumed | `receive(_:now:)` |
/// | timer at `nextWakeup(now:)`, and after any other event | `tick(now:)` |
/// | a `.call` finished | `callCompleted(_:clientKey:outcome:now:)` |
/// | the broker acknowledged a publish | `published(_:)` / `deadLetterPublished(_:)` |
/// | commit timer (after `.commitSoon`), shutdown | `pendingCommits()`, `commitFailed(_:)` |
///
/// Guarantees it keeps (ARCHITECTURE.md, RELIABILITY.md): an offset is committed
/// only when every record below it has had its output acknowledged, and a finished
/// offset above it is recorded in the commit's metadata only once its output was
/// acknowledged; records the last owner recorded as finished are skipped; a task
/// past its deadline fails as `expired` with no further call; completions for
/// revoked partitions are dropped; fetching pauses above `maxInFlight` and resumes
/// at `resumeBelow`.
public struct PollingEngine: Sendable {
    public struct Configuration: Sendable {
        public var policy: PollingPolicy
        /// Used when an event has no clientKey; nil: such tasks fail as `missing_client_key`.
        public var defaultClientKey: ClientKey?
        /// Provider name written into outputs when the event names none.
        public var defaultProvider: String
        /// Every provider polled, each with its policy, task-type policies and key. Empty:
        /// only `defaultProvider`, with `policy` and `defaultClientKey`. With routes, events
        /// without a `provider` go to `defaultProvider`, which must be one of them.
        public var providers: [ProviderRoute] = []
        /// Token lifetimes for `defaultProvider` when there are no `providers` (each route has its own).
        public var tokenLifetimes = TokenLifetimes.standard
        public var maxInFlight = 10_000
        /// Lower the in-flight bound while polls start late (mean lateness above half of each
        /// task's own poll interval), raise it back while they start on time: when the process or the
        /// budget cannot keep more tasks on schedule, the input pauses and the backlog
        /// waits in Kafka instead of every task's polls drifting late.
        public var adaptiveInFlight = false
        /// Fetching resumes below this; unless set, `InFlightGate.resumeBelow(maxInFlight)` (90 %).
        public var resumeBelow: Int {
            get { resumeBelowSetting ?? InFlightGate.resumeBelow(maxInFlight) }
            set { resumeBelowSetting = newValue }
        }
        private var resumeBelowSetting: Int?
        /// The call budget: calls per second for the key, all tasks together (`--rate-limit`).
        /// Default: 200.
        public var rateLimit = 200.0
        public var burst: Double? = nil
        public var maxConcurrentCalls = 64
        public var banDuration: Duration
        public var errorBudget = ErrorBudget()
        /// Consecutive transient errors of one task before it fails as `transient_errors`.
        public var maxTransientAttempts = 10
        public var decoder = TaskEventDecoder()
        public var deadLetterMaxOriginalBytes = DeadLetterMessage.defaultMaxOriginalBytes
        /// Longest commit metadata (the broker's `offset.metadata.max.bytes`).
        public var maxCommitMetadataBytes = OffsetCommitMetadata.defaultMaxBytes
        /// Provider callbacks are taken (`callbackReceived`): tasks are found by id, and
        /// those whose event expects a callback are polled on this safety schedule.
        /// Default: nil, no callbacks.
        public var callbacks: CallbackSchedule?

        /// The polling policy, provider name and ban pause come from `profile`.
        public init(profile: ProviderProfile = .ezCaptcha) {
            policy = PollingPolicy(profile: profile)
            defaultProvider = profile.name
            banDuration = profile.ipBanPause
        }
    }

    public enum Action: Hashable, Sendable {
        /// Call getTaskResult of `provider` (a route's name); report the answer with
        /// `callCompleted` (with this key).
        case call(TaskHandle, taskId: String, clientKey: ClientKey, provider: String)
        /// Produce to the solutions topic (key = taskId); then `published(handle)`.
        case publishSolution(TaskHandle, SolutionMessage)
        /// Produce to the failures topic (key = taskId); then `published(handle)`.
        case publishFailure(TaskHandle, FailureMessage)
        /// Produce to the dead-letter topic (key = `message.recordKey`); then `deadLetterPublished(token)`.
        case publishDeadLetter(OffsetTracker.Token, DeadLetterMessage)
        /// Something finished: commit `pendingCommits()` after the commit interval.
        /// Sent once until the next `pendingCommits()`.
        case commitSoon
        /// Informational: a record the last owner had finished was skipped (no poll, no output).
        case skippedFinished(PartitionID, offset: Int64)
        /// Informational: a partition's commit metadata could not be used; records
        /// finished above its committed offset will be processed again.
        case commitMetadataIgnored(PartitionID, reason: String)
        /// Pause fetching on all assigned partitions (keep polling the consumer).
        case pauseFetching
        /// Records held at the in-flight bound can be taken now: call `tick` soon (it
        /// takes them in order, then says `.resumeFetching` once none is left).
        case takeHeldInput
        /// Resume fetching.
        case resumeFetching
        /// Informational: every call is paused by ERROR_IP_BANNED until then.
        case banned(until: Timestamp)
        /// Informational: a key was disabled by an account error (log the fingerprint only).
        case keyDisabled(ClientKey, errorCode: String)
        /// Informational: the error budget changed the global slowdown factor.
        case slowdownChanged(Double)
    }

    enum Phase: UInt8, Sendable {
        case waiting
        case calling
        case publishing
    }

    struct TaskState: Sendable {
        var context: TaskContext
        var key: ClientKey
        var token: OffsetTracker.Token
        var lastPollAt: Timestamp
        var polls: UInt16 = 0
        var transientStreak: UInt16 = 0
        var phase: Phase = .waiting
        var deferredByBan = false
        /// Index of the task's policy in `routes.policies`.
        var policyIndex: UInt8 = 0
        /// Its route's position (`CallbackKey`).
        var route: UInt8 = 0
        /// Callbacks that made a poll due (at most `CallbackSchedule.maxHintsPerTask`).
        var hints: UInt8 = 0
        /// A callback came during a call: if that call says `processing`, poll again at once.
        var hintPending = false
    }

    public let configuration: Configuration
    var tasks = InFlightTable<TaskState>()
    var scheduler = PollScheduler()
    var offsets: OffsetTracker
    /// Partitions being revoked: no new work, calls in progress finish.
    var draining = Set<PartitionID>()
    /// Final commits of revoked partitions the broker refused (or never got: lost
    /// partitions), kept in case a partition comes back: what they record as finished is
    /// merged with the group's commit then, so this member does not repeat its own work.
    var unsentCommits: [PartitionID: OffsetTracker.Commit] = [:]
    /// Dead letters queued and not acknowledged yet, per partition.
    var pendingDeadLetters: [PartitionID: Int] = [:]
    /// `.commitSoon` was sent and `pendingCommits()` not called since.
    var commitScheduled = false
    var gate: CallGate
    var inFlight: InFlightGate
    var random: SplitMix64
    var slowdown = 1.0
    var interner = StringInterner()
    let routes: ProviderRoutes
    /// Tasks by provider and id, while callbacks are taken (`callbackReceived`).
    var callbackIndex: [CallbackKey: TaskHandle] = [:]
    /// Callbacks that came before their task's event.
    var earlyCallbacks: EarlyCallbacks
    /// Records that arrived at the in-flight bound (already fetched when the input
    /// paused): untracked, like the backlog still in Kafka, and taken in order by `tick`
    /// when the count falls to the low-water mark. Dropped when their partition goes.
    var held = Deque<InputRecord>()
    /// Mean lateness of recent calls, exponentially weighted, each as a share of its own
    /// policy's `lateThreshold` (above 1: late); and the calls since the bound was last
    /// reconsidered (`adaptInFlightBound`).
    var latenessShare = 0.0
    var callsSinceAdapt = 0
    var nextAdaptAt: Timestamp?
    /// How late each call started against its schedule.
    public internal(set) var pollLateness = PollLateness()

    public init(configuration: Configuration, random: SplitMix64 = SplitMix64()) {
        self.configuration = configuration
        self.gate = CallGate(
            rateLimit: configuration.rateLimit, burst: configuration.burst,
            maxConcurrent: configuration.maxConcurrentCalls, banDuration: configuration.banDuration,
            errorBudget: configuration.errorBudget)
        self.inFlight = InFlightGate(highWater: configuration.maxInFlight, lowWater: configuration.resumeBelow)
        self.random = random
        self.routes = ProviderRoutes(configuration)
        self.earlyCallbacks = EarlyCallbacks(capacity: configuration.callbacks?.maxEarlyCallbacks ?? 0,
                                             maxAge: routes.policies.map(\.window).max() ?? .zero)
        self.offsets = OffsetTracker(maxMetadataBytes: configuration.maxCommitMetadataBytes)
    }

    /// Tasks held (waiting, calling or publishing).
    public var inFlightCount: Int { tasks.count }
    /// Records fetched at the in-flight bound and not taken yet (not tasks: no polls).
    public var heldInputCount: Int { held.count }
    /// The in-flight bound now (below `maxInFlight` while polls start late).
    public var inFlightLimit: Int { inFlight.highWater }
    /// The input is paused: the in-flight bound is reached, or records fetched before the
    /// pause are still held (fetching resumes only once they are all taken).
    public var isFetchingPaused: Bool { inFlight.isPaused || !held.isEmpty }
    public var callsInProgress: Int { gate.concurrency.inUse }
    /// Until when an IP ban pauses every call, if one does.
    public var bannedUntil: Timestamp? { gate.ban.pausedUntil }
    /// Keys disabled by an account error.
    public var disabledKeyCount: Int { gate.breaker.deadKeyCount }
    /// The error budget's slowdown of the call rate (1 = none).
    public var callSlowdown: Double { gate.slowdown }
    /// This member's share of the account's call rate (1 = all of it).
    public var callShare: Double { gate.share }
    /// Calls per second allowed now (rate limit × share ÷ slowdown).
    public var callsPerSecond: Double { gate.callsPerSecond }

    /// Sets this member's share of the account's call rate: its input partitions over
    /// all of them, so a group's members together stay within one key's rate limit.
    public mutating func setCallShare(_ share: Double, now: Timestamp) {
        gate.setShare(share, now: now)
    }
    /// Partitions owned (assigned and not revoked).
    public var assignedPartitions: [PartitionID] { offsets.assignedPartitions }
}
