import TaskModel
extension PollingEngine {
    /// A consumed record: a dead letter, an immediate failure, or a task to poll. At the
    /// in-flight bound it is held, untracked, until `tick` takes it: the input is paused,
    /// and what was fetched before the pause waits like the backlog in Kafka.
    public mutating func receive(_ record: InputRecord, now: Timestamp) -> [Action] {
        guard !draining.contains(record.partition) else { return [] } // stays unread for the next owner
        if inFlight.isPaused || !held.isEmpty {
            held.append(record)
            return []
        }
        return take(record, now: now)
    }

    /// Takes held records in order while there is room; `.resumeFetching` once none is left.
    mutating func takeHeld(now: Timestamp) -> [Action] {
        guard !held.isEmpty, !inFlight.isPaused else { return [] }
        var actions: [Action] = []
        while !inFlight.isPaused, let record = held.popFirst() {
            guard !draining.contains(record.partition) else { continue }
            // The input is still paused: a new pause is no news.
            for action in take(record, now: now) where action != .pauseFetching { actions.append(action) }
        }
        if held.isEmpty && !inFlight.isPaused { actions.append(.resumeFetching) }
        return actions
    }

    private mutating func take(_ record: InputRecord, now: Timestamp) -> [Action] {
        let token: OffsetTracker.Token
        switch offsets.track(record.partition, offset: record.source.offset) {
        case .tracked(let tracked):
            token = tracked
        case .alreadyFinished:
            return [.skippedFinished(record.partition, offset: record.source.offset)] + scheduleCommit()
        case .alreadySeen, .notAssigned:
            return [] // not ours any more, or redelivered: skip
        }
        let event: TaskEvent
        switch configuration.decoder.decode(record.value) {
        case .failure(let reason):
            let message = DeadLetterMessage(reason: reason, source: record.source, key: record.key, value: record.value, rejectedAt: now,
                                            trace: record.trace)
            pendingDeadLetters[token.partition, default: 0] += 1
            return [.publishDeadLetter(token, message)]
        case .success(let decoded):
            event = decoded
        }
        guard let route = routes.route(event.provider ?? configuration.defaultProvider) else {
            // Polling it against another provider's API would only produce wrong answers.
            let reason = DeadLetterReason(.unknownProvider,
                                          "provider '\((event.provider ?? configuration.defaultProvider).prefix(64))' is not configured here (configured: \(routes.names.joined(separator: ", ")))")
            let message = DeadLetterMessage(reason: reason, source: record.source, key: record.key, value: record.value, rejectedAt: now,
                                            trace: record.trace)
            pendingDeadLetters[token.partition, default: 0] += 1
            return [.publishDeadLetter(token, message)]
        }
        var context = TaskContext(
            event: event, source: record.source, recordTimestamp: record.source.timestamp ?? now,
            defaultProvider: route.name)
        context.provider = route.name // the configured spelling: it picks the client
        context.trace = record.trace
        // A creation time in the future (producer clock ahead) would stretch the window: clamp it.
        context.createdAt = min(context.createdAt, now)
        context.taskType = interner.intern(context.taskType)
        context.provider = interner.intern(context.provider)
        context.source.topic = interner.intern(context.source.topic)
        let key = event.clientKey ?? route.defaultClientKey
        let policyIndex = routes.policyIndex(route, taskType: context.taskType, expectsCallback: event.expectsCallback)
        let policy = routes.policies[Int(policyIndex)]
        let handle = tasks.insert(TaskState(context: context, key: key ?? ClientKey(""), token: token, lastPollAt: now, policyIndex: policyIndex,
                                            route: route.ordinal))
        var actions: [Action] = []
        if let action = inFlight.added() { actions.append(fetch(action)) }

        guard key != nil else {
            actions.append(fail(handle, reason: .missingClientKey, now: now))
            return actions
        }
        if let trip = gate.breaker.trip(for: key!) {
            actions.append(fail(handle, reason: .accountError, error: ProviderError(errorCode: trip.errorCode, errorDescription: trip.errorDescription), now: now))
            return actions
        }
        switch policy.firstPoll(createdAt: context.createdAt, now: now) {
        case .pollAt(let at):
            scheduler.schedule(handle, at: at, priority: policy.deadline(createdAt: context.createdAt))
            indexForCallbacks(handle, now: now)
        case .expire:
            actions.append(fail(handle, reason: .expired, now: now))
        case .exhausted:
            actions.append(fail(handle, reason: .pollsExhausted, now: now))
        }
        return actions
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

}
