import PollerCore

/// Which records of the topic being replayed are chosen: by reason code, partition and
/// record time. An empty set or a nil bound chooses everything.
public struct ReplayFilter: Sendable, Hashable {
    /// Reason codes: a dead letter's `reason.code` or a failure's `reason`.
    public var reasons: Set<String> = []
    /// Partitions of the topic being replayed (not of the input the record first came from).
    public var partitions: Set<Int32> = []
    /// Record timestamps at or after this one.
    public var since: Timestamp?
    /// Record timestamps before this one.
    public var until: Timestamp?

    public init(reasons: Set<String> = [], partitions: Set<Int32> = [], since: Timestamp? = nil, until: Timestamp? = nil) {
        self.reasons = reasons
        self.partitions = partitions
        self.since = since
        self.until = until
    }

    /// Whether a record of this partition and timestamp may be chosen, before its reason is read.
    /// A record without a timestamp passes no time bound.
    func admits(partition: Int32, timestamp: Timestamp?) -> Bool {
        guard partitions.isEmpty || partitions.contains(partition) else { return false }
        if since == nil && until == nil { return true }
        guard let timestamp else { return false }
        return (since.map { timestamp >= $0 } ?? true) && (until.map { timestamp < $0 } ?? true)
    }

    func admits(reason: String) -> Bool { reasons.isEmpty || reasons.contains(reason) }
}
