import TaskModel
extension PollingEngine {
    /// What an `expired` failure carries when the deadline passed during an IP-ban pause.
    static let expiredInBan = ProviderError(errorCode: "ERROR_IP_BANNED",
                                            errorDescription: "the deadline passed while calls were paused by ERROR_IP_BANNED")

    /// Starts the calls that are due and allowed now; fails tasks whose deadline passed.
    /// Pops one task at a time and stops as soon as the limits block, so a rate
    /// limit or a full permit pool costs nothing per waiting task.
    public mutating func tick(now: Timestamp) -> [Action] {
        var actions = adaptInFlightBound(now: now)
        actions += takeHeld(now: now)
        for action in gate.tick(now: now) { actions.append(translate(action)) }
        while let next = scheduler.nextDeadline(), next <= now {
            let readiness = gate.readiness(now: now)
            switch readiness {
            case .atCapacity, .rateLimitedUntil:
                return actions
            case .bannedUntil(let until):
                // Defer each due task past the ban, or to just after its deadline to fail it then.
                guard let handle = scheduler.popFirstDue(now: now), var task = tasks[handle] else { continue }
                let deadline = routes.policies[Int(task.policyIndex)].deadline(createdAt: task.context.createdAt)
                if now > deadline {
                    actions.append(fail(handle, reason: .expired, error: Self.expiredInBan, now: now))
                    continue
                }
                task.deferredByBan = true
                tasks[handle] = task
                scheduler.schedule(handle, at: until <= deadline ? until : deadline + .milliseconds(1), priority: deadline)
            case .ready:
                guard let (handle, due) = scheduler.popFirstDueWithTime(now: now), var task = tasks[handle] else { continue }
                let deadline = routes.policies[Int(task.policyIndex)].deadline(createdAt: task.context.createdAt)
                if now > deadline {
                    actions.append(fail(handle, reason: .expired, error: task.deferredByBan ? Self.expiredInBan : nil, now: now))
                    continue
                }
                switch gate.admit(key: task.key, now: now) {
                case .proceed:
                    task.phase = .calling
                    task.polls &+= 1
                    task.lastPollAt = now
                    task.deferredByBan = false
                    tasks[handle] = task
                    let late = now.millisecondsSinceEpoch - due.millisecondsSinceEpoch
                    pollLateness.record(milliseconds: late)
                    let lateness = Double(max(0, late)) / Self.lateThreshold(routes.policies[Int(task.policyIndex)])
                    latenessShare += (lateness - latenessShare) / 16
                    callsSinceAdapt += 1
                    actions.append(.call(handle, taskId: task.context.taskId, clientKey: task.key, provider: task.context.provider))
                case .keyDead(let trip):
                    actions.append(fail(handle, reason: .accountError, error: ProviderError(errorCode: trip.errorCode, errorDescription: trip.errorDescription), now: now))
                case .retryAt(let at):
                    scheduler.schedule(handle, at: at, priority: deadline) // raced with a limit; try again then
                case .atCapacity:
                    scheduler.schedule(handle, at: due, priority: deadline) // keeps its place in line and its lateness
                    return actions
                }
            }
        }
        return actions
    }

    /// At most once a second: while polls start late on average (more than half the poll
    /// interval of each task's own policy, at least 250 ms) for reasons of our own, the
    /// bound drops to a tenth below
    /// the tasks in flight (never below a tenth of `maxInFlight`), so the input pauses at
    /// once; while they start on time (under half that), it
    /// grows back by a twentieth of `maxInFlight`. Lateness the error budget's slowdown or
    /// an IP ban causes on purpose does not count.
    mutating func adaptInFlightBound(now: Timestamp) -> [Action] {
        guard configuration.adaptiveInFlight else { return [] }
        if let next = nextAdaptAt, now < next { return [] }
        nextAdaptAt = now + .seconds(1)
        if callsSinceAdapt == 0 { latenessShare /= 2 } // no calls: nothing is late
        callsSinceAdapt = 0
        let maximum = configuration.maxInFlight
        let floor = max(1, min(10, maximum), maximum / 10)
        let deliberate = gate.slowdown > 1 || gate.ban.pausedUntil.map { $0 > now } == true
        var limit = inFlight.highWater
        if latenessShare > 1, !deliberate {
            // A tenth below what is in flight now, not below a bound far above it: such a
            // bound would take many steps to bind while every poll drifts later.
            let current = min(limit, tasks.count)
            limit = max(floor, current - max(1, current / 10))
        } else if latenessShare < 0.5, limit < maximum {
            limit = min(maximum, limit + max(10, maximum / 20))
        }
        guard limit != inFlight.highWater, let action = inFlight.setHighWater(limit) else { return [] }
        return [fetch(action)]
    }

    /// Milliseconds a poll of a task under `policy` may start late before it counts as
    /// late: half its poll interval, at least 250 ms.
    static func lateThreshold(_ policy: PollingPolicy) -> Double {
        max(Double(policy.interval.milliseconds) / 2, 250)
    }

    /// When `tick` should run next, if nothing else happens first; nil when
    /// nothing is scheduled or every permit is in use (a completion will tick).
    public mutating func nextWakeup(now: Timestamp) -> Timestamp? {
        guard let due = scheduler.nextDeadline() else { return nil }
        switch gate.readiness(now: now) {
        case .atCapacity: return nil
        case .rateLimitedUntil(let at): return max(due, at)
        case .ready, .bannedUntil: return due
        }
    }

    /// A `.call` finished. Always call it, also for a task dropped meanwhile: it
    /// returns the concurrency permit.
    public mutating func callCompleted(_ handle: TaskHandle, clientKey: ClientKey, outcome: PollOutcome, now: Timestamp) -> [Action] {
        var actions: [Action] = []
        for action in gate.complete(key: clientKey, result: Self.callResult(outcome), now: now) { actions.append(translate(action)) }
        if case .accountError(let error) = outcome, actions.contains(where: { if case .keyDisabled = $0 { return true } else { return false } }) {
            // First account error of the key: every other waiting task of it fails now (one
            // sweep per dead key); calls in progress fail when they answer.
            for other in tasks.handles where other != handle {
                guard let task = tasks[other], task.key == clientKey, task.phase == .waiting else { continue }
                actions.append(fail(other, reason: .accountError, error: error, now: now))
            }
        }
        guard var task = tasks[handle], task.phase == .calling else { return actions } // revoked meanwhile
        if draining.contains(task.token.partition) {
            switch outcome {
            case .ready, .taskFailed, .taskNotFound, .accountError:
                break // a result: publish it, so the next owner need not poll again
            case .processing, .transient, .ipBanned:
                // No more polls here: the task stays unfinished for the next owner.
                removeTask(handle)
                if let action = inFlight.removed() { actions.append(fetch(action)) }
                return actions
            }
        }
        task.phase = .waiting
        // A callback came while this call was out: a `processing` answer may predate the solve.
        let hinted = task.hintPending
        task.hintPending = false
        let policy = routes.policies[Int(task.policyIndex)]
        switch outcome {
        case .ready(let solution, let receipt):
            task.phase = .publishing
            tasks[handle] = task
            // The token's clock starts when the answer is first seen ready: the provider
            // issued it no later than that.
            let expiresAt = routes.tokenLifetime(provider: task.context.provider, taskType: task.context.taskType).map { now + $0 }
            actions.append(.publishSolution(handle, SolutionMessage(context: task.context, solution: solution, polls: Int(task.polls),
                                                                    resolvedAt: now, expiresAt: expiresAt,
                                                                    receipt: receipt.isEmpty ? nil : receipt)))
            return actions
        case .taskFailed(let error):
            actions.append(fail(handle, reason: .taskError, error: error, now: now))
            return actions
        case .taskNotFound(let error):
            actions.append(fail(handle, reason: .taskNotFound, error: error, now: now))
            return actions
        case .accountError(let error):
            actions.append(fail(handle, reason: .accountError, error: error, now: now))
            return actions
        case .ipBanned:
            tasks[handle] = task
            let deadline = policy.deadline(createdAt: task.context.createdAt)
            if let until = gate.ban.pausedUntil, until <= deadline {
                scheduler.schedule(handle, at: until, priority: deadline)
            } else {
                actions.append(fail(handle, reason: .expired, error: Self.expiredInBan, now: now))
            }
            return actions
        case .processing, .transient:
            let kind: PollingPolicy.Outcome
            if case .transient = outcome {
                task.transientStreak &+= 1
                kind = .transient
            } else {
                task.transientStreak = 0
                kind = .processing
            }
            tasks[handle] = task
            if kind == .transient, Int(task.transientStreak) > configuration.maxTransientAttempts {
                actions.append(fail(handle, reason: .transientErrors, now: now))
                return actions
            }
            var decision = policy.nextPoll(
                after: kind, pollsSoFar: Int(task.polls), lastPollAt: task.lastPollAt, createdAt: task.context.createdAt,
                now: now, backoffAttempt: Int(task.transientStreak), slowdown: slowdown, using: &random)
            if hinted, kind == .processing, case .pollAt(let at) = decision {
                decision = .pollAt(min(at, max(now, task.lastPollAt + policy.minInterval)))
            }
            var notBefore: Timestamp?
            if case .transient(let retryAfter?) = outcome { notBefore = now + retryAfter }
            switch decision {
            case .pollAt(let at):
                let due = max(at, notBefore ?? at)
                let deadline = policy.deadline(createdAt: task.context.createdAt)
                if due > deadline {
                    // The provider asks for a pause that outlasts the window: no poll can help.
                    actions.append(fail(handle, reason: .transientErrors, now: now))
                } else {
                    scheduler.schedule(handle, at: due, priority: deadline)
                }
            case .expire: actions.append(fail(handle, reason: .expired, now: now))
            case .exhausted: actions.append(fail(handle, reason: .pollsExhausted, now: now))
            }
            return actions
        }
    }

    static func callResult(_ outcome: PollOutcome) -> CallGate.CallResult {
        switch outcome {
        case .processing, .ready: return .success
        case .transient: return .transientError
        case .taskFailed: return .taskOutcome
        case .taskNotFound: return .taskError
        case .accountError(let error): return .accountError(code: error.errorCode, description: error.errorDescription)
        case .ipBanned: return .ipBanned
        }
    }

    mutating func translate(_ action: CallGate.Action) -> Action {
        switch action {
        case .pauseAllUntil(let until):
            return .banned(until: until)
        case .failAllTasks(let key, let trip):
            return .keyDisabled(key, errorCode: trip.errorCode)
        case .setSlowdown(let factor):
            slowdown = factor
            return .slowdownChanged(factor)
        }
    }
}
