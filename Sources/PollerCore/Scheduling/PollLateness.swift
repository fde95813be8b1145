/// How late polls start against their schedule (call start − due time), as a
/// histogram with fixed buckets. A poll late by more than the poll interval means the
/// call budget or the process cannot keep every task on schedule.
public struct PollLateness: Sendable, Hashable {
    /// Upper bounds of the buckets, milliseconds (Prometheus `le`, cumulative on export).
    public static let bucketBounds: [Int64] = [5, 25, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000]

    /// Polls per bucket (not cumulative); the last entry counts polls later than every bound.
    public private(set) var bucketCounts = [UInt64](repeating: 0, count: bucketBounds.count + 1)
    public private(set) var count: UInt64 = 0
    public private(set) var sumMilliseconds: Int64 = 0

    public init() {}

    mutating func record(milliseconds: Int64) {
        let late = max(0, milliseconds)
        var bucket = 0
        while bucket < Self.bucketBounds.count, late > Self.bucketBounds[bucket] { bucket += 1 }
        bucketCounts[bucket] &+= 1
        count &+= 1
        sumMilliseconds &+= late
    }

    /// Cumulative counts per bound, then the total (`+Inf`).
    public var cumulativeCounts: [UInt64] {
        var total: UInt64 = 0
        return bucketCounts.map { total &+= $0; return total }
    }
}
