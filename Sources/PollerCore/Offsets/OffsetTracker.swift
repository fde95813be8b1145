import DequeModule

/// Per-partition commit state: the lowest unfinished offset (the watermark) and the
/// offsets finished above it, which travel in the commit metadata (ARCHITECTURE.md §5).
///
/// A value-type state machine: the driver calls it under its lock and commits what
/// it returns afterwards.
///
/// - `assign` takes a partition with what its last owner committed: the offsets
///   recorded there as finished are skipped when they arrive (`track` answers
///   `.alreadyFinished`), with no poll and no output;
/// - `track` when a record is taken (offsets arrive in increasing order per
///   partition, possibly with gaps: compaction, transaction markers);
/// - `finish` once the record's output was acknowledged by the broker (or it
///   needed no output); out of order is fine;
/// - `pendingCommits` returns, for each partition that changed since its last
///   commit, the offset to commit and the metadata that records the finished
///   offsets above it; `commitFailed` puts a partition back for the next round;
/// - `revoke` returns the final commit and forgets the partition, so late
///   completions are discarded; a token from an older assignment of the same
///   partition is discarded too.
///
/// The committed offset is what Kafka wants, the *next offset to read*: the lowest
/// offset still unfinished, or, when nothing is outstanding, the last tracked + 1.
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
        /// The last owner finished this offset (its commit metadata says so): skip it,
        /// it counts as finished.
        case alreadyFinished
        /// The offset is not above the highest offset already tracked in this
        /// assignment (redelivery after a seek): it is outstanding or done; skip it.
        case alreadySeen
        /// The partition is not assigned: skip the record.
        case notAssigned
    }

    public enum FinishResult: Hashable, Sendable {
        /// Recorded; the partition has something new to commit.
        case finished
        /// The completion belongs to a partition (or an assignment of it) no longer
        /// owned, or to an offset not outstanding: ignored.
        case discarded
    }

    /// What to commit for one partition.
    public struct Commit: Hashable, Sendable {
        public var partition: PartitionID
        /// The next offset to read: the lowest unfinished one.
        public var offset: Int64
        /// `OffsetCommitMetadata` of the finished offsets above `offset` ("" for none).
        public var metadata: String
        /// Finished offsets above `offset` that the metadata records.
        public var finishedAbove: Int64
        /// Some finished offsets did not fit under the size cap: a crash or handover
        /// repeats them (never loses them).
        public var truncated: Bool
    }

    struct PartitionState: Sendable {
        var epoch: UInt64
        /// Outstanding offsets in increasing order; `done` runs parallel to it. The
        /// first is never done (finished ones at the front are removed at once).
        var offsets: Deque<Int64> = []
        var done: Deque<Bool> = []
        var highestTracked: Int64 = -1
        /// Offsets the last owner finished that this member has not read yet, as
        /// sorted disjoint ranges; the front is dropped as reading passes it.
        var inherited: Deque<Range<Int64>> = []
        /// Changed since the last successful commit.
        var dirty = false
        var lastCommitted: (offset: Int64, metadata: String)?

        func index(of offset: Int64) -> Int? {
            var low = 0
            var high = offsets.count
            while low < high {
                let mid = (low + high) / 2
                if offsets[mid] < offset { low = mid + 1 } else { high = mid }
            }
            return low < offsets.count && offsets[low] == offset ? low : nil
        }

        /// Whether the last owner finished `offset`; drops inherited ranges below it.
        mutating func inheritedFinished(_ offset: Int64) -> Bool {
            while let first = inherited.first, first.upperBound <= offset { inherited.removeFirst() }
            return inherited.first?.contains(offset) ?? false
        }

        /// The commit this state implies now: nil before anything was read (the last
        /// owner's commit stands as it is).
        func commit(_ partition: PartitionID, maxMetadataBytes: Int) -> Commit? {
            var finished: [Range<Int64>] = []
            func add(_ range: Range<Int64>) {
                if let last = finished.last, last.upperBound >= range.lowerBound {
                    finished[finished.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
                } else {
                    finished.append(range)
                }
            }
            let base: Int64
            if let first = offsets.first {
                base = first
                // Runs of done offsets; an offset never delivered between two tracked ones
                // does not exist for this consumer (compaction, markers) and joins the run.
                var runStart: Int64?
                for i in offsets.indices.dropFirst() {
                    if done[i] {
                        if runStart == nil { runStart = offsets[i - 1] + 1 }
                    } else if let start = runStart {
                        add(start..<offsets[i])
                        runStart = nil
                    }
                }
                if let start = runStart { add(start..<(highestTracked + 1)) }
            } else if highestTracked >= 0 {
                base = highestTracked + 1
            } else {
                return nil
            }
            for range in inherited where range.upperBound > highestTracked + 1 {
                add(max(range.lowerBound, highestTracked + 1)..<range.upperBound)
            }
            // Finished offsets right at the base move the base past them.
            var committedOffset = base
            if let first = finished.first, first.lowerBound <= committedOffset {
                committedOffset = first.upperBound
                finished.removeFirst()
            }
            let encoded = OffsetCommitMetadata.encode(base: committedOffset, finished: finished, maxBytes: maxMetadataBytes)
            let count = encoded.recorded.reduce(Int64(0)) { $0 + Int64($1.count) }
            return Commit(partition: partition, offset: committedOffset, metadata: encoded.metadata,
                          finishedAbove: count, truncated: encoded.truncated)
        }
    }

    var partitions: [PartitionID: PartitionState] = [:]
    var nextEpoch: UInt64 = 1
    /// The longest metadata string a commit carries (the broker's
    /// `offset.metadata.max.bytes`; Apache Kafka's default is 4096).
    public var maxMetadataBytes: Int

    public init(maxMetadataBytes: Int = OffsetCommitMetadata.defaultMaxBytes) {
        self.maxMetadataBytes = maxMetadataBytes
    }

    /// Takes ownership of `partition`. `finished`: offsets the last owner recorded as
    /// finished above the committed offset (decoded commit metadata). Idempotent
    /// for an owned partition.
    public mutating func assign(_ partition: PartitionID, finished: [Range<Int64>] = []) {
        guard partitions[partition] == nil else { return }
        partitions[partition] = PartitionState(epoch: nextEpoch, inherited: Deque(finished))
        nextEpoch += 1
    }

    public mutating func track(_ partition: PartitionID, offset: Int64) -> TrackResult {
        guard var state = partitions[partition] else { return .notAssigned }
        guard offset > state.highestTracked, offset >= 0 else { return .alreadySeen }
        partitions[partition] = nil // keep the Deques uniquely referenced while mutating
        defer { partitions[partition] = state }
        state.highestTracked = offset
        if state.inheritedFinished(offset) {
            if !state.offsets.isEmpty {
                state.offsets.append(offset)
                state.done.append(true)
            }
            state.dirty = true
            return .alreadyFinished
        }
        state.offsets.append(offset)
        state.done.append(false)
        return .tracked(Token(partition: partition, offset: offset, epoch: state.epoch))
    }

    /// Marks the token's offset finished (its output acknowledged).
    public mutating func finish(_ token: Token) -> FinishResult {
        guard var state = partitions[token.partition], state.epoch == token.epoch else { return .discarded }
        guard let index = state.index(of: token.offset), !state.done[index] else { return .discarded }
        partitions[token.partition] = nil
        defer { partitions[token.partition] = state }
        state.done[index] = true
        state.dirty = true
        if index == 0 {
            while let first = state.done.first, first {
                state.done.removeFirst()
                state.offsets.removeFirst()
            }
        }
        return .finished
    }

    /// The commits of every partition that changed since its last commit, marked
    /// as committed (call `commitFailed` for those the broker refused).
    public mutating func pendingCommits() -> [Commit] {
        var commits: [Commit] = []
        for partition in partitions.keys where partitions[partition]!.dirty {
            if let commit = takeCommit(partition) { commits.append(commit) }
        }
        return commits
    }

    /// The broker refused these commits: they are due again in the next round.
    public mutating func commitFailed(_ commits: [Commit]) {
        for commit in commits {
            guard var state = partitions[commit.partition] else { continue }
            partitions[commit.partition] = nil
            state.dirty = true
            if let last = state.lastCommitted, last.offset == commit.offset, last.metadata == commit.metadata {
                state.lastCommitted = nil
            }
            partitions[commit.partition] = state
        }
    }

    /// Forgets `partition` and returns its final commit, if it differs from the
    /// last one. Later tokens of it are discarded.
    public mutating func revoke(_ partition: PartitionID) -> Commit? {
        guard partitions[partition] != nil else { return nil }
        let commit = takeCommit(partition)
        partitions[partition] = nil
        return commit
    }

    /// The commit the partition's state implies now (for tests and metrics).
    public func currentCommit(_ partition: PartitionID) -> Commit? {
        partitions[partition]?.commit(partition, maxMetadataBytes: maxMetadataBytes)
    }

    /// The offset that would be committed now (lowest outstanding, or highest tracked + 1).
    public func committableOffset(_ partition: PartitionID) -> Int64? { currentCommit(partition)?.offset }

    /// Offsets tracked and not yet removed from the front (finished ones above
    /// the watermark still count until the watermark passes them).
    public func outstandingCount(_ partition: PartitionID) -> Int { partitions[partition]?.offsets.count ?? 0 }

    public var assignedPartitions: [PartitionID] { Array(partitions.keys) }

    private mutating func takeCommit(_ partition: PartitionID) -> Commit? {
        guard var state = partitions[partition] else { return nil }
        state.dirty = false
        defer { partitions[partition] = state }
        guard let commit = state.commit(partition, maxMetadataBytes: maxMetadataBytes) else { return nil }
        if let last = state.lastCommitted, last.offset == commit.offset, last.metadata == commit.metadata { return nil }
        state.lastCommitted = (commit.offset, commit.metadata)
        return commit
    }
}
