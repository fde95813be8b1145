/// Bounded in-flight work with hysteresis: pause the consumer's partitions when
/// the count reaches `highWater`, resume when it falls to `lowWater`.
public struct InFlightGate: Hashable, Sendable {
    public private(set) var highWater: Int
    public private(set) var lowWater: Int
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

    /// Where fetching resumes for a bound: 90 % of it (and below it). The one place
    /// this default is written.
    public static func resumeBelow(_ highWater: Int) -> Int { min(highWater - 1, highWater * 9 / 10) }

    /// Moves the bound (resume at `resumeBelow` of it); pauses or resumes if the count now calls for it.
    public mutating func setHighWater(_ newHighWater: Int) -> Action? {
        highWater = max(newHighWater, 1)
        lowWater = Self.resumeBelow(highWater)
        if !isPaused, count >= highWater {
            isPaused = true
            return .pause
        }
        if isPaused, count <= lowWater {
            isPaused = false
            return .resume
        }
        return nil
    }

    /// After a rebalance the consumer resumes nothing by itself: the current
    /// wish, to re-apply to newly assigned partitions.
    public var wanted: Action { isPaused ? .pause : .resume }
}
