/// A point in time: milliseconds since the Unix epoch (UTC).
///
/// The engine measures every deadline from the task's creation time, which comes
/// from the event (`createdAt`) or the Kafka record timestamp, so wall-clock
/// milliseconds is the one time base for the whole core. Nothing in the core
/// reads a clock: the driver passes `now` in, which keeps the state machines
/// deterministic in tests.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var millisecondsSinceEpoch: Int64

    @inlinable
    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    public static let distantFuture = Timestamp(millisecondsSinceEpoch: .max)
    public static let distantPast = Timestamp(millisecondsSinceEpoch: .min)

    @inlinable
    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    /// Saturating: never wraps around, `distantFuture + x` stays `distantFuture`.
    @inlinable
    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        let (sum, overflow) = lhs.millisecondsSinceEpoch.addingReportingOverflow(rhs.milliseconds)
        if overflow { return rhs.milliseconds > 0 ? .distantFuture : .distantPast }
        return Timestamp(millisecondsSinceEpoch: sum)
    }

    @inlinable
    public static func - (lhs: Timestamp, rhs: Duration) -> Timestamp {
        lhs + .milliseconds(-rhs.milliseconds)
    }

    /// The span from `rhs` to `lhs`, in whole milliseconds.
    @inlinable
    public static func - (lhs: Timestamp, rhs: Timestamp) -> Duration {
        .milliseconds(lhs.millisecondsSinceEpoch &- rhs.millisecondsSinceEpoch)
    }

    public var description: String { rfc3339 }
}

extension Duration {
    /// This duration in seconds, with its fraction.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// This duration in whole milliseconds, rounded toward zero, saturating at Int64 bounds.
    @inlinable
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds > 0 ? .max : .min }
        let (total, overflow2) = ms.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        if overflow2 { return seconds > 0 ? .max : .min }
        return total
    }
}
