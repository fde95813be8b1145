import TaskModel

/// When to poll a task next. A value type with no I/O and no clock:
/// every function takes `now`, and jitter comes from an injected generator.
///
/// Time line of a task: created at `createdAt`; first poll at
/// `createdAt + initialDelay`; then every `interval` while the provider says
/// `processing`, with exponential backoff on transient errors; never two polls
/// of one task closer than `minInterval`; at most `maxPolls` polls; no poll after
/// `deadline = createdAt + window - safetyMargin` (the provider forgets results
/// `window` after creation). When no further poll fits, the answer is
/// `.expire`: the task fails as `expired` without another call.
public struct PollingPolicy: Hashable, Sendable {
    /// Delay from creation to the first poll (solves take 10-80 s; polling earlier is wasted).
    public var initialDelay: Duration
    /// Regular spacing while the provider answers `processing` (ez-captcha: 3 s).
    public var interval: Duration
    /// Provider's per-task minimum between polls (capmonster: 2 s). Applies to backoff too.
    public var minInterval: Duration
    /// Poll cap per task (capsolver drops results after 120, capmonster bans at 120).
    public var maxPolls: Int
    /// How long after creation the provider keeps the result (300 s).
    public var window: Duration
    /// Stop polling this long before the window closes (request latency, clock skew).
    public var safetyMargin: Duration
    /// First backoff step after a transient error; doubled per consecutive attempt.
    public var backoffBase: Duration
    /// Cap of one backoff step.
    public var backoffMax: Duration
    /// Share of each backoff step that is randomised (0 = none, 1 = full jitter).
    public var jitter: Double

    /// "Equal jitter": half of each backoff step fixed, half drawn.
    public static let equalJitter = 0.5

    /// Every value stated; `init(profile:)` takes them from a provider profile,
    /// which owns the defaults.
    public init(
        initialDelay: Duration,
        interval: Duration,
        minInterval: Duration,
        maxPolls: Int,
        window: Duration,
        safetyMargin: Duration,
        backoffBase: Duration,
        backoffMax: Duration,
        jitter: Double = PollingPolicy.equalJitter
    ) {
        self.initialDelay = initialDelay
        self.interval = interval
        self.minInterval = minInterval
        self.maxPolls = maxPolls
        self.window = window
        self.safetyMargin = safetyMargin
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The policy a provider's profile asks for.
    public init(profile: ProviderProfile) {
        self.init(
            initialDelay: profile.initialDelay,
            interval: profile.defaultPollInterval,
            minInterval: profile.minPollInterval,
            maxPolls: profile.maxPolls,
            window: profile.resultWindow,
            safetyMargin: profile.safetyMargin,
            backoffBase: profile.backoffBase,
            backoffMax: profile.backoffMax)
    }

    public enum Decision: Hashable, Sendable {
        /// Poll at this time (never before `now`, never after the deadline).
        case pollAt(Timestamp)
        /// The deadline passed, or no further poll fits before it: fail as `expired`.
        case expire
        /// `maxPolls` reached: fail as `polls_exhausted`.
        case exhausted
    }

    /// The non-terminal outcomes of a poll that the policy schedules after.
    public enum Outcome: Hashable, Sendable {
        /// `status: processing` / `idle`.
        case processing
        /// 429, 5xx, timeout, connection error, non-JSON body, overload codes.
        case transient
    }

    /// Last moment a poll may start.
    public func deadline(createdAt: Timestamp) -> Timestamp {
        createdAt + window - safetyMargin
    }

    /// When to poll a task first; `.expire` for a task that arrives past its deadline.
    public func firstPoll(createdAt: Timestamp, now: Timestamp) -> Decision {
        guard maxPolls > 0 else { return .exhausted }
        let deadline = deadline(createdAt: createdAt)
        guard now <= deadline else { return .expire }
        return .pollAt(min(max(now, createdAt + initialDelay), deadline))
    }

    /// When to poll next after a `processing` or transient outcome.
    ///
    /// - Parameters:
    ///   - pollsSoFar: polls made for this task, including the one that just ended.
    ///   - lastPollAt: when the last poll started (the `minInterval` reference).
    ///   - backoffAttempt: consecutive transient outcomes including this one
    ///     (1 for the first); ignored for `.processing`.
    ///   - slowdown: global factor >= 1 from the error budget, stretching the spacing.
    public func nextPoll<R: RandomNumberGenerator>(
        after outcome: Outcome,
        pollsSoFar: Int,
        lastPollAt: Timestamp,
        createdAt: Timestamp,
        now: Timestamp,
        backoffAttempt: Int = 0,
        slowdown: Double = 1,
        using random: inout R
    ) -> Decision {
        guard pollsSoFar < maxPolls else { return .exhausted }
        let deadline = deadline(createdAt: createdAt)
        guard now <= deadline else { return .expire }
        let spacing: Duration
        switch outcome {
        case .processing:
            spacing = interval
        case .transient:
            spacing = backoff(attempt: backoffAttempt, using: &random)
        }
        let stretched = Duration.milliseconds(Int64((Double(spacing.milliseconds) * max(slowdown, 1)).rounded()))
        let earliest = max(now, lastPollAt + minInterval)
        let wanted = max(earliest, lastPollAt + stretched)
        if wanted <= deadline { return .pollAt(wanted) }
        // The natural time is past the deadline: one last poll right at the deadline
        // if the per-task minimum allows it, so a late solve is still caught.
        return earliest <= deadline ? .pollAt(deadline) : .expire
    }

    /// Convenience with the system generator (production); tests inject their own.
    public func nextPoll(
        after outcome: Outcome, pollsSoFar: Int, lastPollAt: Timestamp, createdAt: Timestamp,
        now: Timestamp, backoffAttempt: Int = 0, slowdown: Double = 1
    ) -> Decision {
        var random = SystemRandomNumberGenerator()
        return nextPoll(
            after: outcome, pollsSoFar: pollsSoFar, lastPollAt: lastPollAt, createdAt: createdAt,
            now: now, backoffAttempt: backoffAttempt, slowdown: slowdown, using: &random)
    }

    /// One backoff step: `min(backoffMax, backoffBase * 2^(attempt-1))`, of which the
    /// `jitter` share is drawn uniformly ("equal jitter" at 0.5). Never below `minInterval`.
    public func backoff<R: RandomNumberGenerator>(attempt: Int, using random: inout R) -> Duration {
        let base = max(backoffBase.milliseconds, 1)
        let exponent = min(max(attempt - 1, 0), 30)
        let (raw, overflow) = base.multipliedReportingOverflow(by: Int64(1) << exponent)
        let capped = overflow ? backoffMax.milliseconds : min(raw, backoffMax.milliseconds)
        let randomPart = Int64(Double(capped) * jitter)
        let fixedPart = capped - randomPart
        // One draw mapped to 0...randomPart: no rejection loop, so any generator terminates.
        let unit = Double(random.next() >> 11) * 0x1p-53
        let drawn = min(Int64(Double(randomPart + 1) * unit), randomPart)
        return .milliseconds(max(fixedPart + drawn, minInterval.milliseconds))
    }
}
