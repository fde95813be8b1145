import Foundation
import Kafka
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskAPI

// Pipeline: due polls → batches of HTTP calls per provider → completions back into the engine.
extension Pipeline {
    /// Each tick's calls go to their provider's client as one batch; their completions
    /// come back on the client's event loop (`completed`), not as a task per call.
    func dispatchLoop() async {
        while !stopRequested.isSet {
            let now = WallClock.now()
            let (actions, next) = withEngine { engine in (engine.tick(now: now), engine.nextWakeup(now: now)) }
            var rest: [PollingEngine.Action] = []
            var calls: [TaskResultCall] = []
            var providers: [String] = []
            let started = ContinuousClock.now
            for action in actions {
                if case .call(let handle, let taskId, let key, let provider) = action {
                    calls.append(TaskResultCall(taskId: taskId, clientKey: key) { [self] outcome in
                        completed(handle, clientKey: key, started: started, outcome: outcome)
                    })
                    providers.append(provider)
                } else {
                    rest.append(action)
                }
            }
            if !calls.isEmpty {
                counters.polled(calls.count)
                start(calls, providers: providers)
            }
            await performAsync(rest)
            await wakeup.wait(until: next)
        }
        // Calls still running after the drain end when the client closes (after the pipeline).
        await drain(withEngine { Set($0.assignedPartitions) })
    }

    /// Hands each client its calls in one batch.
    func start(_ calls: [TaskResultCall], providers: [String]) {
        guard !clients.isEmpty else { return client.start(calls) }
        var batches: [String: [TaskResultCall]] = [:]
        for (call, provider) in zip(calls, providers) { batches[provider, default: []].append(call) }
        for (provider, batch) in batches { (clients[provider] ?? client).start(batch) }
    }

    /// A call's outcome, on the client's thread: the engine decides, the dispatcher is
    /// woken only when this makes a poll due before it would wake anyway.
    func completed(_ handle: TaskHandle, clientKey: ClientKey, started: ContinuousClock.Instant, outcome: TaskOutcome) {
        let duration = ContinuousClock.now - started
        metrics.polled(outcome, duration: duration)
        let now = WallClock.now()
        tracing?.polled(handle, outcome: PipelineMetrics.OutcomeClass(outcome).rawValue, at: now, seconds: duration.inSeconds)
        let (actions, next) = withEngine { engine in
            (engine.callCompleted(handle, clientKey: clientKey, outcome: PollOutcome(outcome), now: now), engine.nextWakeup(now: now))
        }
        wakeup.signal(ifDueBefore: next)
        signalDrained()
        guard !actions.isEmpty else { return }
        if actions.contains(where: \.publishes) {
            Task { await performAsync(actions) }
        } else {
            perform(actions)
        }
    }
}

// Pipeline: provider callbacks → an earlier poll (never an output of their own).
extension Pipeline {
    /// How a callback reached this member.
    public enum CallbackSource: String, Sendable {
        /// Over HTTP, at this member's receiver.
        case http
        /// From another member, through the relay topic (`CallbackRelay`).
        case relay
    }

    /// A provider said a task is done: if it is in flight here, its next poll is due now
    /// (within the call budget); the dispatcher wakes for it.
    @discardableResult
    public func callbackArrived(_ callback: ProviderCallback, via source: CallbackSource = .http) -> PollingEngine.CallbackVerdict {
        let now = WallClock.now()
        let (verdict, provider, next) = withEngine { engine in
            (engine.callbackReceived(provider: callback.provider, taskId: callback.taskId, now: now),
             engine.routeName(callback.provider), engine.nextWakeup(now: now))
        }
        if verdict == .pollDue { wakeup.signal(ifDueBefore: next) }
        metrics.callback(provider: provider ?? "unknown", result: verdict.rawValue, via: source.rawValue)
        return verdict
    }
}
