/// Accounting of concurrent HTTP requests against a cap.
public struct ConcurrencyLimit: Hashable, Sendable {
    public var limit: Int
    public private(set) var inUse = 0

    public init(limit: Int) {
        precondition(limit > 0, "ConcurrencyLimit: limit must be positive")
        self.limit = limit
    }

    public var available: Int { max(limit - inUse, 0) }

    public mutating func tryAcquire() -> Bool {
        guard inUse < limit else { return false }
        inUse += 1
        return true
    }

    /// Returns a permit; extra releases are ignored rather than going negative.
    public mutating func release() {
        if inUse > 0 { inUse -= 1 }
    }
}
