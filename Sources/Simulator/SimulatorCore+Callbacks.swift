import TaskModel

/// A callback the simulator is to POST: to `url`, at API time `at`, with `body`.
public struct CallbackDelivery: Sendable, Hashable {
    public var url: String
    public var taskId: String
    public var at: Double
    public var body: [UInt8]
    /// A "ready" callback sent while the task is still being solved.
    public var forged: Bool
}

extension SimulatorCore {
    /// Draws a task's callbacks (`SimulatorConfig.CallbackConfig`) from a stream of its own,
    /// so turning callbacks on changes no task's id or solve time.
    mutating func planCallbacks(taskId: String, index: UInt64, url: String, createdAt: Double, readyAt: Double, unsolvable: Bool) {
        let rules = config.callbacks
        var random = SplitMix64(seed: config.seed ^ 0xCA11_BAC4_0000_0000, stream: index)
        let delay = { (random: inout SplitMix64) in rules.minDelay + random.unit() * (rules.maxDelay - rules.minDelay) }
        let body = unsolvable
            ? SimulatorResponses.error(.captchaUnsolvable, taskId: taskId)
            : SimulatorResponses.ready(taskId: taskId, style: config.taskIdStyle, createdAt: createdAt, readyAt: readyAt)
        if random.chance(rules.lossProbability) {
            counters.callbacksLost += 1
        } else {
            let at = readyAt + delay(&random)
            pendingCallbacks.append(CallbackDelivery(url: url, taskId: taskId, at: at, body: body, forged: false))
            if random.chance(rules.duplicateProbability) {
                counters.callbacksDuplicated += 1
                pendingCallbacks.append(CallbackDelivery(url: url, taskId: taskId, at: at + random.unit() * max(rules.maxDelay, 1), body: body, forged: false))
            }
        }
        if random.chance(rules.forgedProbability) {
            counters.callbacksForged += 1
            let fake = SimulatorResponses.forgedReady(taskId: taskId, style: config.taskIdStyle)
            pendingCallbacks.append(CallbackDelivery(url: url, taskId: taskId, at: createdAt + random.unit() * (readyAt - createdAt) * 0.9,
                                                     body: fake, forged: true))
        }
    }

    /// The callbacks planned since the last call, for the sender.
    public mutating func takeCallbacks() -> [CallbackDelivery] {
        defer { pendingCallbacks.removeAll() }
        return pendingCallbacks
    }
}
