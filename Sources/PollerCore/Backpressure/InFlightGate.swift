/// Bounded in-flight work with hysteresis: pause the consumer's partitions when
/// the count reaches `highWater`, resume when it falls to `lowWater`.
public struct InFlightGate: Hashable, Sendable {
    public let highWater: Int
    public let lowWater: Int
    public private(set) var count = 0
    public private(set) var isPaused = false

    public enum Action: Hashable, Sendable {
        /// Pause fetching on every assigned partition (keep calling poll).
        case pause
        /// Resume fetching.
        case resume
    }

    public init(highWater: Int, lowWater: Int) {
        precondition(highWater > 0 && lowWater >= 0 && lowWater < highWater, "InFlightGate: need 0 <= lowWater < highWater")
        self.highWater = highWater
        self.lowWater = lowWater
    }

    /// A task entered the in-flight set.
    public mutating func added(_ n: Int = 1) -> Action? {
        count += n
        guard !isPaused, count >= highWater else { return nil }
        isPaused = true
        return .pause
    }

    /// A task left it (finished, or dropped on revoke).
    public mutating func removed(_ n: Int = 1) -> Action? {
        count = max(count - n, 0)
        guard isPaused, count <= lowWater else { return nil }
        isPaused = false
        return .resume
    }

    /// After a rebalance the consumer resumes nothing by itself: the current
    /// wish, to re-apply to newly assigned partitions.
    public var wanted: Action { isPaused ? .pause : .resume }
}
