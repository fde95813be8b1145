/// A requests-per-second limiter: `rate` tokens per second, up to `burst` saved.
/// Time is passed in; refill is computed lazily, so there is no timer.
public struct TokenBucket: Hashable, Sendable {
    public private(set) var rate: Double
    public private(set) var burst: Double
    private var tokens: Double
    private var updatedAt: Timestamp?

    public init(rate: Double, burst: Double? = nil) {
        precondition(rate > 0, "TokenBucket: rate must be positive")
        self.rate = rate
        self.burst = max(burst ?? rate, 1)
        self.tokens = self.burst
    }

    private mutating func refill(now: Timestamp) {
        if let updatedAt, now > updatedAt {
            tokens = min(burst, tokens + Double(now.millisecondsSinceEpoch - updatedAt.millisecondsSinceEpoch) * rate / 1000)
        }
        if updatedAt == nil || now > updatedAt! { updatedAt = now }
    }

    /// Takes one token if there is one.
    public mutating func tryAcquire(now: Timestamp) -> Bool {
        refill(now: now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// When the next token will be there (`now` if one is there already).
    public mutating func nextAvailable(now: Timestamp) -> Timestamp {
        refill(now: now)
        if tokens >= 1 { return now }
        let waitMs = ((1 - tokens) * 1000 / rate).rounded(.up)
        return now + .milliseconds(Int64(waitMs))
    }

    /// Changes the rate (e.g. the error budget's slowdown) and, if given, the burst;
    /// saved tokens are kept up to the new burst.
    public mutating func setRate(_ rate: Double, burst newBurst: Double? = nil, now: Timestamp) {
        precondition(rate > 0, "TokenBucket: rate must be positive")
        refill(now: now)
        self.rate = rate
        if let newBurst { burst = max(newBurst, 1) }
        tokens = min(tokens, burst)
    }
}
