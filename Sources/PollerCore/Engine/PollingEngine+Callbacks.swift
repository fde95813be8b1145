import TaskModel

/// A task's identity in the callback index: its route and its id (ids of two providers may collide).
struct CallbackKey: Hashable, Sendable {
    var route: UInt8
    var taskId: String
}

extension PollingEngine {
    /// What a provider callback did. A callback never publishes anything by itself: at
    /// most it makes the task's next poll due now, and that poll goes through the call
    /// budget like any other, ordered by deadline among the due polls.
    public enum CallbackVerdict: String, Sendable, CaseIterable {
        /// The task's next poll is due now.
        case pollDue = "poll_due"
        /// A call of the task is out: if it answers `processing`, the next poll is at once.
        case afterCall = "after_call"
        /// The task's poll was due already (a duplicate that came before that poll).
        case alreadyDue = "already_due"
        /// The task's result is being published; nothing to do.
        case finished
        /// The task had its share of callbacks (`CallbackSchedule.maxHintsPerTask`).
        case overLimit = "over_limit"
        /// No such task in flight here yet: remembered (`EarlyCallbacks`), so its first poll
        /// is at once if its event comes (it may be finished already, or another member's).
        case early
        /// Not a task of ours: a partition being given up, or a callback already remembered.
        case unknownTask = "unknown_task"
        /// A provider this engine has no route for (or callbacks are not taken).
        case unknownProvider = "unknown_provider"
    }

    /// A provider said task `taskId` of `provider` (a route name, any case) is done.
    /// Forged, duplicated, late and foreign callbacks change nothing but, at most
    /// `maxHintsPerTask` times per task, the time of its next poll.
    public mutating func callbackReceived(provider: String, taskId: String, now: Timestamp) -> CallbackVerdict {
        guard let schedule = configuration.callbacks, let route = routes.route(provider) else { return .unknownProvider }
        let key = CallbackKey(route: route.ordinal, taskId: taskId)
        guard let handle = callbackIndex[key], var task = tasks[handle], task.context.taskId == taskId else {
            return earlyCallbacks.remember(key, now: now) ? .early : .unknownTask
        }
        guard !draining.contains(task.token.partition) else { return .unknownTask }
        switch task.phase {
        case .publishing:
            return .finished
        case .calling:
            if task.hintPending { return .afterCall }
            guard Int(task.hints) < schedule.maxHintsPerTask else { return .overLimit }
            task.hints &+= 1
            task.hintPending = true
            tasks[handle] = task
            return .afterCall
        case .waiting:
            // During an IP ban every call waits; the poll after it is the first possible.
            if task.deferredByBan { return .alreadyDue }
            let policy = routes.policies[Int(task.policyIndex)]
            // Never closer to the last poll than the provider's per-task minimum.
            let earliest = task.polls == 0 ? now : max(now, task.lastPollAt + policy.minInterval)
            if let due = scheduler.dueTime(of: handle), due <= earliest { return .alreadyDue }
            guard Int(task.hints) < schedule.maxHintsPerTask else { return .overLimit }
            task.hints &+= 1
            tasks[handle] = task
            scheduler.schedule(handle, at: earliest, priority: policy.deadline(createdAt: task.context.createdAt))
            return .pollDue
        }
    }

    /// A task just taken: indexed for its callbacks; if one came before it, its first poll
    /// is now (the callback's hint, counted as one).
    mutating func indexForCallbacks(_ handle: TaskHandle, now: Timestamp) {
        guard configuration.callbacks != nil, var task = tasks[handle] else { return }
        let key = CallbackKey(route: task.route, taskId: task.context.taskId)
        callbackIndex[key] = handle
        guard earlyCallbacks.take(key, now: now) else { return }
        task.hints = 1
        tasks[handle] = task
        scheduler.schedule(handle, at: now, priority: routes.policies[Int(task.policyIndex)].deadline(createdAt: task.context.createdAt))
    }

    /// Removes a task from the table and from the callback index.
    @discardableResult
    mutating func removeTask(_ handle: TaskHandle) -> TaskState? {
        guard let task = tasks.remove(handle) else { return nil }
        if configuration.callbacks != nil {
            let key = CallbackKey(route: task.route, taskId: task.context.taskId)
            if callbackIndex[key] == handle { callbackIndex[key] = nil }
        }
        return task
    }

    /// Whether the task is still held here (waiting, calling or publishing).
    public func holds(_ handle: TaskHandle) -> Bool { tasks.contains(handle) }

    /// The configured spelling of a provider's name (any case), if it has a route.
    public func routeName(_ provider: String) -> String? { routes.route(provider)?.name }

    /// Tasks the callback index holds (for tests: it never outgrows the in-flight table).
    public var callbackIndexCount: Int { callbackIndex.count }
    /// Callbacks remembered for tasks not read yet.
    public var earlyCallbackCount: Int { earlyCallbacks.count }
}
