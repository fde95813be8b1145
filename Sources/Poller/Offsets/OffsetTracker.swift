import DequeModule

/// Per-partition watermarks of the lowest unfinished offset (DESIGN §4).
///
/// A value-type state machine: the driver calls it under its lock and performs
/// the returned `Action` (store an offset through the consumer) afterwards.
///
/// - `track` when a record is taken (offsets arrive in increasing order per
///   partition, possibly with gaps: compaction, transaction markers);
/// - `finish` once the record's output was acknowledged by the broker (or it
///   needed no output); out of order is fine;
/// - `revoke` from the rebalance handler: returns the final watermark to store
///   and forgets the partition, so late completions are discarded;
/// - `assign` starts a new epoch; a token from an older assignment of the same
///   partition is discarded too.
///
/// The committable offset Kafka wants is the *next offset to read*: the lowest
/// offset still tracked, or, when nothing is outstanding, the last tracked + 1.
public struct OffsetTracker: Sendable {
    /// Proof that an offset was tracked in a given assignment of its partition.
    public struct Token: Hashable, Sendable {
        public let partition: PartitionID
        public let offset: Int64
        public let epoch: UInt64
    }

    public enum TrackResult: Hashable, Sendable {
        /// Process the record; hand `Token` back to `finish`.
        case tracked(Token)
        /// The offset is not above the highest offset already tracked in this
        /// assignment (redelivery after a seek): it is outstanding or done; skip it.
        case alreadySeen
        /// The partition is not assigned: skip the record.
        case notAssigned
    }

    public enum Action: Hashable, Sendable {
        /// Store `offset` (the next offset to read) for `partition`.
        case store(PartitionID, offset: Int64)
        /// The completion belongs to a partition (or an assignment of it) no
        /// longer owned, or to an offset not outstanding: ignore it.
        case discard
        /// Recorded; the watermark did not move.
        case none
    }

    struct PartitionState: Sendable {
        var epoch: UInt64
        /// Outstanding offsets in increasing order; `done` runs parallel to it.
        var offsets: Deque<Int64> = []
        var done: Deque<Bool> = []
        var highestTracked: Int64 = -1
        var lastStored: Int64 = -1

        /// Lowest unfinished offset, or highest tracked + 1; nil if nothing was tracked yet.
        var committable: Int64? {
            if let first = offsets.first { return first }
            return highestTracked >= 0 ? highestTracked + 1 : nil
        }

        func index(of offset: Int64) -> Int? {
            var low = 0
            var high = offsets.count
            while low < high {
                let mid = (low + high) / 2
                if offsets[mid] < offset { low = mid + 1 } else { high = mid }
            }
            return low < offsets.count && offsets[low] == offset ? low : nil
        }
    }

    var partitions: [PartitionID: PartitionState] = [:]
    var nextEpoch: UInt64 = 1

    public init() {}

    /// Takes ownership of `partition`. Idempotent for an owned partition.
    public mutating func assign(_ partition: PartitionID) {
        guard partitions[partition] == nil else { return }
        partitions[partition] = PartitionState(epoch: nextEpoch)
        nextEpoch += 1
    }

    public func isAssigned(_ partition: PartitionID) -> Bool { partitions[partition] != nil }

    public mutating func track(_ partition: PartitionID, offset: Int64) -> TrackResult {
        guard var state = partitions[partition] else { return .notAssigned }
        guard offset > state.highestTracked, offset >= 0 else { return .alreadySeen }
        partitions[partition] = nil // keep the Deques uniquely referenced while mutating
        state.offsets.append(offset)
        state.done.append(false)
        state.highestTracked = offset
        let token = Token(partition: partition, offset: offset, epoch: state.epoch)
        partitions[partition] = state
        return .tracked(token)
    }

    /// Marks the token's offset finished (its output acknowledged).
    public mutating func finish(_ token: Token) -> Action {
        guard var state = partitions[token.partition], state.epoch == token.epoch else { return .discard }
        guard let index = state.index(of: token.offset), !state.done[index] else { return .discard }
        partitions[token.partition] = nil
        defer { partitions[token.partition] = state }
        state.done[index] = true
        guard index == 0 else { return .none }
        while let first = state.done.first, first {
            state.done.removeFirst()
            state.offsets.removeFirst()
        }
        return Self.storeIfAdvanced(&state, partition: token.partition)
    }

    /// Forgets `partition` and returns the final watermark to store, if it moved
    /// past what was stored already. Later tokens of it are discarded.
    public mutating func revoke(_ partition: PartitionID) -> Action {
        guard var state = partitions.removeValue(forKey: partition) else { return .discard }
        return Self.storeIfAdvanced(&state, partition: partition)
    }

    /// Final watermarks of every owned partition (graceful shutdown), without forgetting them.
    public mutating func storeAll() -> [Action] {
        var actions: [Action] = []
        for partition in partitions.keys {
            let action = Self.storeIfAdvanced(&partitions[partition]!, partition: partition)
            if action != .none { actions.append(action) }
        }
        return actions
    }

    /// The offset that would be stored now (lowest outstanding, or highest tracked + 1).
    public func committableOffset(_ partition: PartitionID) -> Int64? { partitions[partition]?.committable }

    /// Offsets tracked and not yet removed from the front (finished ones above
    /// the watermark still count until the watermark passes them).
    public func outstandingCount(_ partition: PartitionID) -> Int { partitions[partition]?.offsets.count ?? 0 }

    public var assignedPartitions: [PartitionID] { Array(partitions.keys) }

    private static func storeIfAdvanced(_ state: inout PartitionState, partition: PartitionID) -> Action {
        guard let offset = state.committable, offset > state.lastStored else { return .none }
        state.lastStored = offset
        return .store(partition, offset: offset)
    }
}
