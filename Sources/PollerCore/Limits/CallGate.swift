import TaskModel
/// Every limit that stands between a due poll and an HTTP call, in one state
/// machine: the account breaker, the global ban pause, the concurrency cap, the
/// requests-per-second bucket and the error budget that slows the bucket down.
///
/// The driver asks `admit` before each call and reports each answer with
/// `complete`; both run under its lock and return what to do, and the driver
/// does it after releasing the lock.
public struct CallGate: Sendable {
    public internal(set) var breaker = AccountBreaker()
    public internal(set) var ban: BanPause
    public internal(set) var concurrency: ConcurrencyLimit
    public internal(set) var bucket: TokenBucket
    public internal(set) var budget: ErrorBudget
    /// The account's rate (`--rate-limit`), before the share and the slowdown.
    public let rateLimit: Double
    private let baseBurst: Double
    /// This member's share of the account's rate: its input partitions over all of them,
    /// so the members of one group together stay within one key's rate. 1: all of it.
    public private(set) var share = 1.0
    /// The error budget's slowdown factor (1 = full speed).
    public private(set) var slowdown = 1.0
    /// The smallest share (a rate must stay positive; a member with no partitions has no tasks).
    public static let minimumShare = 1e-4

    public init(
        rateLimit: Double, burst: Double? = nil, maxConcurrent: Int,
        banDuration: Duration = ProviderProfile.ezCaptcha.ipBanPause, errorBudget: ErrorBudget = ErrorBudget()
    ) {
        self.rateLimit = rateLimit
        bucket = TokenBucket(rate: rateLimit, burst: burst)
        baseBurst = bucket.burst
        concurrency = ConcurrencyLimit(limit: maxConcurrent)
        ban = BanPause(banDuration: banDuration)
        budget = errorBudget
    }

    public enum Admission: Hashable, Sendable {
        /// Make the call now; a concurrency permit and a token were taken.
        /// Report the answer with `complete` (which returns the permit).
        case proceed
        /// Not before this time (ban pause or rate limit); keep the task scheduled.
        case retryAt(Timestamp)
        /// All permits in use: try again when a call completes.
        case atCapacity
        /// The key is dead: fail the task as `account_error` with the trip's code.
        case keyDead(AccountBreaker.Trip)
    }

    /// A poll's answer, as far as the limits care.
    public enum CallResult: Hashable, Sendable {
        /// `processing` or `ready`.
        case success
        /// The task's own outcome (unsolvable, unsupported, bad parameters): the
        /// captcha's doing, not ours, so it does not count against the error budget.
        case taskOutcome
        /// The provider does not know the task id: a request we should not have sent
        /// (counts against the error budget, as providers ban on such errors).
        case taskError
        /// 429, 5xx, timeout, connection error, non-JSON, overload codes.
        case transientError
        /// ERROR_IP_BANNED.
        case ipBanned
        /// ERROR_KEY_DOES_NOT_EXIST, ERROR_KEY_BANNED, ERROR_ZERO_BALANCE.
        case accountError(code: String, description: String?)
    }

    public enum Action: Hashable, Sendable {
        /// No calls at all until then (reschedule due tasks to then).
        case pauseAllUntil(Timestamp)
        /// Fail every in-flight task of this key as `account_error`; no calls with it any more.
        case failAllTasks(of: ClientKey, AccountBreaker.Trip)
        /// Global slowdown factor changed (1 = full speed): stretch poll spacing by it.
        case setSlowdown(Double)
    }

    public mutating func admit(key: ClientKey, now: Timestamp) -> Admission {
        if let trip = breaker.trip(for: key) { return .keyDead(trip) }
        if let until = ban.pausedUntil(now: now) { return .retryAt(until) }
        guard concurrency.available > 0 else { return .atCapacity }
        guard bucket.tryAcquire(now: now) else { return .retryAt(bucket.nextAvailable(now: now)) }
        _ = concurrency.tryAcquire()
        return .proceed
    }

    public mutating func complete(key: ClientKey, result: CallResult, now: Timestamp) -> [Action] {
        concurrency.release()
        var actions: [Action] = []
        let isError: Bool
        switch result {
        case .success, .taskOutcome:
            isError = false
        case .taskError, .transientError:
            isError = true
        case .ipBanned:
            isError = true
            if case .pauseAll(let until)? = ban.reportBan(now: now) {
                actions.append(.pauseAllUntil(until))
            }
        case .accountError(let code, let description):
            isError = true
            if case .failAllTasks(let dead, let trip)? = breaker.reportAccountError(
                key: key, errorCode: code, errorDescription: description, now: now) {
                actions.append(.failAllTasks(of: dead, trip))
            }
        }
        if case .setSlowdown(let factor)? = budget.record(error: isError, now: now) {
            applySlowdown(factor, now: now)
            actions.append(.setSlowdown(factor))
        }
        return actions
    }

    /// Lets errors age out of the budget while few calls happen (call it from the driver's tick).
    public mutating func tick(now: Timestamp) -> [Action] {
        guard case .setSlowdown(let factor)? = budget.reevaluate(now: now) else { return [] }
        applySlowdown(factor, now: now)
        return [.setSlowdown(factor)]
    }

    /// Calls per second allowed now: the rate times the share, divided by the slowdown.
    public var callsPerSecond: Double { bucket.rate }

    /// Sets this member's share of the account's rate (clamped to `minimumShare`...1);
    /// the burst shrinks alike, so members cannot together burst past the account.
    public mutating func setShare(_ share: Double, now: Timestamp) {
        self.share = min(max(share, Self.minimumShare), 1)
        applyRate(now: now)
    }

    private mutating func applySlowdown(_ factor: Double, now: Timestamp) {
        slowdown = factor
        applyRate(now: now)
    }

    private mutating func applyRate(now: Timestamp) {
        bucket.setRate(rateLimit * share / slowdown, burst: baseBurst * share, now: now)
    }
}
