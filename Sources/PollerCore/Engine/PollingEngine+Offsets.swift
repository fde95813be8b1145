import TaskModel
extension PollingEngine {
    /// A partition handed to this member, with what the group committed for it.
    public struct AssignedPartition: Hashable, Sendable {
        public var partition: PartitionID
        /// The committed offset (the next to read); nil when nothing is committed.
        public var committedOffset: Int64?
        /// The commit's metadata (`OffsetCommitMetadata`), if any.
        public var metadata: String?

        public init(_ partition: PartitionID, committedOffset: Int64? = nil, metadata: String? = nil) {
            self.partition = partition
            self.committedOffset = committedOffset
            self.metadata = metadata
        }
    }

    /// New partitions: start tracking them, skipping what the last owner recorded as
    /// finished. Metadata that cannot be used is ignored (reported): those records are
    /// processed again, never skipped. Re-applies the pause wish, since a fresh
    /// assignment is not paused.
    public mutating func assigned(_ partitions: [AssignedPartition]) -> [Action] {
        var actions: [Action] = []
        for assigned in partitions {
            var finished: [Range<Int64>] = []
            if let metadata = assigned.metadata, !metadata.isEmpty {
                if let base = assigned.committedOffset {
                    do {
                        finished = try OffsetCommitMetadata.decode(metadata, base: base)
                    } catch {
                        actions.append(.commitMetadataIgnored(assigned.partition, reason: "\(error)"))
                    }
                } else {
                    actions.append(.commitMetadataIgnored(assigned.partition, reason: "metadata without a committed offset"))
                }
            }
            if let unsent = unsentCommits.removeValue(forKey: assigned.partition) {
                finished = Self.merged(finished, with: unsent, from: assigned.committedOffset)
            }
            offsets.assign(assigned.partition, finished: finished)
        }
        if (inFlight.isPaused || !held.isEmpty) && !partitions.isEmpty { actions.append(.pauseFetching) }
        return actions
    }

    /// Finished offsets (above `committed`, where fetching starts) from the group's
    /// commit and from this member's own refused final commit of the partition: a union
    /// of facts, each an acknowledged output, so it is right whoever owned the partition
    /// in between. Sorted, non-overlapping.
    static func merged(_ finished: [Range<Int64>], with unsent: OffsetTracker.Commit, from committed: Int64?) -> [Range<Int64>] {
        let start = committed ?? 0
        var ranges = finished
        if unsent.offset > start { ranges.append(start..<unsent.offset) }
        if !unsent.metadata.isEmpty, let own = try? OffsetCommitMetadata.decode(unsent.metadata, base: unsent.offset) {
            ranges += own
        }
        var union: [Range<Int64>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where range.upperBound > start {
            let clipped = max(range.lowerBound, start)..<range.upperBound
            if let last = union.last, last.upperBound >= clipped.lowerBound {
                union[union.count - 1] = last.lowerBound..<max(last.upperBound, clipped.upperBound)
            } else {
                union.append(clipped)
            }
        }
        return union
    }

    /// The broker refused these final commits of revoked partitions: keep what they
    /// record, in case the partitions come back to this member (`assigned` merges it).
    public mutating func finalCommitsRefused(_ commits: [OffsetTracker.Commit]) {
        for commit in commits { unsentCommits[commit.partition] = commit }
    }

    /// Partitions about to be revoked (graceful): no new records, no new calls. Their
    /// waiting tasks are dropped (they stay unfinished for the next owner); calls in
    /// progress may finish and publish. Wait while `busyCount(in:)` is above zero
    /// (bounded by a drain timeout), then call `revoked`.
    public mutating func revoking(_ partitions: [PartitionID]) -> [Action] {
        let gone = Set(partitions).intersection(offsets.assignedPartitions)
        guard !gone.isEmpty else { return [] }
        draining.formUnion(gone)
        return dropTasks(of: gone, onlyWaiting: true)
    }

    /// Forgets the tasks of these partitions (only those waiting for their next poll,
    /// or all of them) and their held records; returns the fetch action the lower
    /// in-flight count, or the last held records gone, may call for.
    mutating func dropTasks(of partitions: Set<PartitionID>, onlyWaiting: Bool) -> [Action] {
        let wasPaused = isFetchingPaused
        var dropped = 0
        for handle in tasks.handles {
            guard let task = tasks[handle], partitions.contains(task.token.partition),
                  !onlyWaiting || task.phase == .waiting else { continue }
            scheduler.cancel(handle)
            removeTask(handle)
            dropped += 1
        }
        held.removeAll { partitions.contains($0.partition) } // re-read by whoever owns them next
        if dropped > 0 { _ = inFlight.removed(dropped) }
        // Held records alone may have kept the input paused (the gate had resumed, `tick`
        // was to take them): with the last of them gone the input resumes here, or nothing
        // would resume it.
        guard wasPaused, !inFlight.isPaused else { return [] }
        return [fetch(.resume)]
    }

    /// Tasks of these partitions in a call or waiting for their output's acknowledgement,
    /// and their dead letters not acknowledged yet.
    public func busyCount(in partitions: Set<PartitionID>) -> Int {
        var busy = partitions.reduce(0) { $0 + (pendingDeadLetters[$1] ?? 0) }
        for handle in tasks.handles {
            if let task = tasks[handle], task.phase != .waiting, partitions.contains(task.token.partition) { busy += 1 }
        }
        return busy
    }

    /// Partitions taken away: their remaining tasks are dropped (the next owner polls
    /// them again) and late completions discarded. Returns the final commit of each,
    /// to commit before the partitions are given up; none when `lost` (another member
    /// may own them already: the commits are kept for `assigned` instead).
    public mutating func revoked(_ partitions: [PartitionID], lost: Bool = false) -> (commits: [OffsetTracker.Commit], actions: [Action]) {
        let gone = Set(partitions)
        var commits: [OffsetTracker.Commit] = []
        for partition in partitions {
            if let commit = offsets.revoke(partition) {
                // Lost: another member may own them already, so nothing is committed; what
                // finished here is kept in case they come back.
                if lost { unsentCommits[partition] = commit } else { commits.append(commit) }
            }
            draining.remove(partition)
            pendingDeadLetters[partition] = nil
        }
        return (commits, dropTasks(of: gone, onlyWaiting: false))
    }

    /// The output of a task was acknowledged: its offset is finished.
    public mutating func published(_ handle: TaskHandle) -> [Action] {
        guard let task = removeTask(handle) else { return [] } // revoked meanwhile
        var actions = offsets.finish(task.token) == .finished ? scheduleCommit() : []
        if let action = inFlight.removed() { actions.append(fetch(action)) }
        return actions
    }

    /// A dead letter was acknowledged.
    public mutating func deadLetterPublished(_ token: OffsetTracker.Token) -> [Action] {
        if let pending = pendingDeadLetters[token.partition] {
            pendingDeadLetters[token.partition] = pending > 1 ? pending - 1 : nil
        }
        return offsets.finish(token) == .finished ? scheduleCommit() : []
    }

    /// What to commit now: each partition that changed since its last commit.
    public mutating func pendingCommits() -> [OffsetTracker.Commit] {
        commitScheduled = false
        return offsets.pendingCommits()
    }

    /// The broker refused these commits: they are retried after the commit interval.
    public mutating func commitFailed(_ commits: [OffsetTracker.Commit]) -> [Action] {
        guard !commits.isEmpty else { return [] }
        offsets.commitFailed(commits)
        return scheduleCommit()
    }

    /// `.commitSoon` once per round.
    mutating func scheduleCommit() -> [Action] {
        guard !commitScheduled else { return [] }
        commitScheduled = true
        return [.commitSoon]
    }

    /// What the in-flight gate's wish means for the input: with records held, resuming
    /// means taking them first (`tick`), and fetching resumes once they are all taken.
    func fetch(_ action: InFlightGate.Action) -> Action {
        switch action {
        case .pause: return .pauseFetching
        case .resume: return held.isEmpty ? .resumeFetching : .takeHeldInput
        }
    }
}
