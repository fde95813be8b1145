import TaskAPI
extension PollingEngine {
    /// New partitions: start tracking them. Re-applies the pause wish, since a
    /// fresh assignment is not paused.
    public mutating func assigned(_ partitions: [PartitionID]) -> [Action] {
        for partition in partitions { offsets.assign(partition) }
        return inFlight.isPaused && !partitions.isEmpty ? [.pauseFetching] : []
    }

    /// Partitions taken away (call from the synchronous rebalance handler): the
    /// final watermark of each to store, and their tasks dropped; the next owner
    /// re-polls them from the watermark. Late completions for them are discarded.
    public mutating func revoked(_ partitions: [PartitionID]) -> [Action] {
        var actions: [Action] = []
        let gone = Set(partitions)
        for partition in partitions {
            if let action = Self.store(offsets.revoke(partition)) { actions.append(action) }
        }
        var dropped = 0
        for handle in tasks.handles where gone.contains(tasks[handle]!.token.partition) {
            scheduler.cancel(handle)
            tasks.remove(handle)
            dropped += 1
        }
        if dropped > 0, let action = inFlight.removed(dropped) { actions.append(Self.fetch(action)) }
        return actions
    }

    /// A consumed record: a dead letter, an immediate failure, or a task to poll.
    public mutating func receive(_ record: InputRecord, now: Timestamp) -> [Action] {
        guard case .tracked(let token) = offsets.track(record.partition, offset: record.source.offset) else {
            return [] // not ours any more, or redelivered: skip
        }
        let event: TaskEvent
        switch configuration.decoder.decode(record.value) {
        case .failure(let reason):
            let message = DeadLetterMessage(reason: reason, source: record.source, key: record.key, value: record.value, rejectedAt: now)
            return [.publishDeadLetter(token, message)]
        case .success(let decoded):
            event = decoded
        }
        var context = TaskContext(
            event: event, source: record.source, recordTimestamp: record.source.timestamp ?? now,
            defaultProvider: configuration.defaultProvider)
        // A creation time in the future (producer clock ahead) would stretch the window: clamp it.
        context.createdAt = min(context.createdAt, now)
        context.taskType = interner.intern(context.taskType)
        context.provider = interner.intern(context.provider)
        context.source.topic = interner.intern(context.source.topic)
        let key = event.clientKey ?? configuration.defaultClientKey
        let handle = tasks.insert(TaskState(context: context, key: key ?? ClientKey(""), token: token, lastPollAt: now))
        var actions: [Action] = []
        if let action = inFlight.added() { actions.append(Self.fetch(action)) }

        guard key != nil else {
            actions.append(fail(handle, reason: .missingClientKey, now: now))
            return actions
        }
        if let trip = gate.breaker.trip(for: key!) {
            actions.append(fail(handle, reason: .accountError, error: ProviderError(errorCode: trip.errorCode, errorDescription: trip.errorDescription), now: now))
            return actions
        }
        switch configuration.policy.firstPoll(createdAt: context.createdAt, now: now) {
        case .pollAt(let at):
            scheduler.schedule(handle, at: at)
        case .expire:
            actions.append(fail(handle, reason: .expired, now: now))
        case .exhausted:
            actions.append(fail(handle, reason: .pollsExhausted, now: now))
        }
        return actions
    }

    /// The output of a task was acknowledged: finish its offset, maybe store a watermark.
    public mutating func published(_ handle: TaskHandle) -> [Action] {
        guard let task = tasks.remove(handle) else { return [] } // revoked meanwhile
        var actions: [Action] = []
        if let action = Self.store(offsets.finish(task.token)) { actions.append(action) }
        if let action = inFlight.removed() { actions.append(Self.fetch(action)) }
        return actions
    }

    /// A dead letter was acknowledged.
    public mutating func deadLetterPublished(_ token: OffsetTracker.Token) -> [Action] {
        Self.store(offsets.finish(token)).map { [$0] } ?? []
    }

    /// Watermarks of every owned partition not stored yet (graceful shutdown,
    /// after the outstanding publishes were acknowledged or given up).
    public mutating func finalOffsets() -> [Action] {
        offsets.storeAll().compactMap(Self.store)
    }

    /// Ends a task: no more calls, its failure to publish.
    mutating func fail(_ handle: TaskHandle, reason: FailureReason, error: ProviderError? = nil, now: Timestamp) -> Action {
        scheduler.cancel(handle)
        var message: FailureMessage?
        tasks.update(handle) { task in
            task.phase = .publishing
            message = FailureMessage(
                context: task.context, reason: reason, errorId: error?.errorId, errorCode: error?.errorCode,
                errorDescription: error?.errorDescription, polls: Int(task.polls), resolvedAt: now)
        }
        return .publishFailure(handle, message!)
    }

    static func store(_ action: OffsetTracker.Action) -> Action? {
        guard case .store(let partition, let offset) = action else { return nil }
        return .storeOffset(partition, offset: offset)
    }

    static func fetch(_ action: InFlightGate.Action) -> Action {
        action == .pause ? .pauseFetching : .resumeFetching
    }
}
