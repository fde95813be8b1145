/// A sliding-window error-rate tracker that slows all polling down as errors
/// climb, so ezpoll never provokes a provider's "many errors in a short window"
/// IP ban. It counts the errors our requests cause (transport, 5xx/429, malformed
/// answers, unknown task ids, overload codes), not task outcomes such as an
/// unsolvable captcha. The factor rises at once (the account comes first) but falls
/// only `minHold` after its last change, so near the threshold it does not flap
/// with every call.
///
/// Counts calls and errors in one-second buckets over `window`. The budget is
/// exceeded when the error *rate* passes `maxErrorRate` (with at least
/// `minCalls` calls seen) or the error *count* passes `maxErrors`; the slowdown
/// factor then grows with how far over budget it is, up to `maxSlowdown`. The
/// driver divides its request rate by the factor and stretches poll spacing by
/// it (`PollingPolicy.nextPoll(slowdown:)`).
public struct ErrorBudget: Hashable, Sendable {
    public var window: Duration
    public var maxErrorRate: Double
    public var minCalls: Int
    public var maxErrors: Int
    public var maxSlowdown: Double
    /// Shortest time from a change of the slowdown factor to a lower factor.
    public var minHold: Duration

    struct Bucket: Hashable, Sendable {
        var second: Int64 = .min
        var calls: Int32 = 0
        var errors: Int32 = 0
    }

    private var buckets: [Bucket]
    private var reportedSlowdown: Double = 1
    private var changedAt: Timestamp?

    public enum Action: Hashable, Sendable {
        /// The slowdown factor changed (1 = full speed).
        case setSlowdown(Double)
    }

    public init(window: Duration = .seconds(60), maxErrorRate: Double = 0.2, minCalls: Int = 20, maxErrors: Int = 60,
                maxSlowdown: Double = 16, minHold: Duration = .seconds(5)) {
        self.window = window
        self.minHold = minHold
        self.maxErrorRate = maxErrorRate
        self.minCalls = minCalls
        self.maxErrors = maxErrors
        self.maxSlowdown = max(maxSlowdown, 1)
        buckets = Array(repeating: Bucket(), count: max(Int(window.milliseconds / 1000), 1))
    }

    /// Records one call's outcome; returns an action when the slowdown factor changes.
    public mutating func record(error: Bool, now: Timestamp) -> Action? {
        let second = Self.second(now)
        let slot = Int(UInt64(bitPattern: second) % UInt64(buckets.count))
        if buckets[slot].second != second { buckets[slot] = Bucket(second: second) }
        buckets[slot].calls += 1
        if error { buckets[slot].errors += 1 }
        return reevaluate(now: now)
    }

    /// Re-reads the window (errors age out); call it on a timer or before scheduling.
    public mutating func reevaluate(now: Timestamp) -> Action? {
        let factor = slowdown(now: now)
        guard factor != reportedSlowdown else { return nil }
        if factor < reportedSlowdown, let changedAt, now < changedAt + minHold { return nil } // relax only after a while
        reportedSlowdown = factor
        changedAt = now
        return .setSlowdown(factor)
    }

    /// Calls and errors within the window ending at `now`.
    public func counts(now: Timestamp) -> (calls: Int, errors: Int) {
        let current = Self.second(now)
        var calls = 0
        var errors = 0
        for bucket in buckets where bucket.second > current - Int64(buckets.count) && bucket.second <= current {
            calls += Int(bucket.calls)
            errors += Int(bucket.errors)
        }
        return (calls, errors)
    }

    /// 1 within budget; otherwise the worst overshoot ratio, rounded up to a power of two.
    public func slowdown(now: Timestamp) -> Double {
        let (calls, errors) = counts(now: now)
        var over = 1.0
        if calls >= minCalls, calls > 0, maxErrorRate > 0 {
            let rate = Double(errors) / Double(calls)
            if rate > maxErrorRate { over = max(over, rate / maxErrorRate) }
        }
        if maxErrors > 0, errors > maxErrors { over = max(over, Double(errors) / Double(maxErrors)) }
        guard over > 1 else { return 1 }
        // Powers of two keep the factor from flapping with every single call.
        var factor = 2.0
        while factor < over, factor < maxSlowdown { factor *= 2 }
        return min(factor, maxSlowdown)
    }

    private static func second(_ t: Timestamp) -> Int64 {
        let ms = t.millisecondsSinceEpoch
        return ms >= 0 ? ms / 1000 : (ms - 999) / 1000
    }
}
