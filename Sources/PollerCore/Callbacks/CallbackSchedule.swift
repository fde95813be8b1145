/// How tasks are polled while `ezpoll run` listens for provider callbacks
/// (`--callback-port`): a callback is a hint that makes the task's next poll due at
/// once; polling stays the truth and the fallback for callbacks that never come.
///
/// A task whose event says a callback will come (`"callback": true`) is polled on a
/// slower safety schedule: first at `firstPoll` after creation, then every `interval`;
/// so a lost callback still ends in a solution inside the result window.
public struct CallbackSchedule: Hashable, Sendable {
    /// Default: 30 s, about the 85th percentile of a reCAPTCHA solve (median 15 s):
    /// most callbacks arrive before it, and a poll then finds most lost ones ready.
    public static let defaultFirstPoll = Duration.seconds(30)
    /// Default: 15 s.
    public static let defaultInterval = Duration.seconds(15)
    /// Default: 2 (one genuine callback, one duplicate or early one); later callbacks
    /// of the task are counted and dropped, so forged ones buy at most this many polls.
    public static let defaultMaxHintsPerTask = 2
    /// Default: 10,000 (about 1 MiB).
    public static let defaultMaxEarlyCallbacks = 10_000

    /// From creation to the first safety poll (never earlier than the policy's own first poll).
    public var firstPoll: Duration
    /// Between safety polls (never shorter than the policy's own interval).
    public var interval: Duration
    /// Callbacks per task that make a poll due; later ones change nothing.
    public var maxHintsPerTask: Int
    /// Callbacks remembered for tasks whose event has not been read yet (`EarlyCallbacks`).
    public var maxEarlyCallbacks: Int

    public init(firstPoll: Duration = defaultFirstPoll, interval: Duration = defaultInterval,
                maxHintsPerTask: Int = defaultMaxHintsPerTask, maxEarlyCallbacks: Int = defaultMaxEarlyCallbacks) {
        self.firstPoll = firstPoll
        self.interval = interval
        self.maxHintsPerTask = max(0, maxHintsPerTask)
        self.maxEarlyCallbacks = max(0, maxEarlyCallbacks)
    }
}

extension PollingPolicy {
    /// This policy for a task that expects a callback: the same window, caps and backoff,
    /// with the first poll and the spacing of `schedule` where they are later.
    public func expectingCallback(_ schedule: CallbackSchedule) -> PollingPolicy {
        var policy = self
        policy.initialDelay = max(initialDelay, schedule.firstPoll)
        policy.interval = max(interval, schedule.interval)
        return policy
    }
}
