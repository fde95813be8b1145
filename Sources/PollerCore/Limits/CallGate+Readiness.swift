extension CallGate {
    /// Whether a call could start now, for any key not known dead, without
    /// taking anything: lets the driver stop popping due tasks while blocked
    /// instead of rescheduling every one of them.
    public enum Readiness: Hashable, Sendable {
        case ready
        /// Rate limited: a token comes at this time.
        case rateLimitedUntil(Timestamp)
        /// Every call is paused by an IP ban until this time.
        case bannedUntil(Timestamp)
        /// All permits in use: wait for a completion.
        case atCapacity
    }

    public mutating func readiness(now: Timestamp) -> Readiness {
        if let until = ban.pausedUntil(now: now) { return .bannedUntil(until) }
        guard concurrency.available > 0 else { return .atCapacity }
        let next = bucket.nextAvailable(now: now)
        return next > now ? .rateLimitedUntil(next) : .ready
    }
}
