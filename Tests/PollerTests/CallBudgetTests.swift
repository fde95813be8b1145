import Foundation
import Kafka
import Poller
import Simulator
import TaskAPI
import Testing
import TestSupport

/// The call budget over the embedded Kafka cluster and the simulator: one key's rate
/// limit is shared by a group's members, and a burst beyond the budget waits in Kafka
/// instead of expiring in memory. Bounds on calls are behaviour (a limit that holds);
/// no test asserts that anything is fast.
@Suite("Call budget: one account budget per group, backlog in Kafka", .serialized)
struct CallBudgetTests {
    @Test("two members of one group together stay within one key's rate limit")
    func twoMembersShareTheRateLimit() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        // Tasks stay processing for the whole test: every member always has polls due.
        sim.solveTime = .init(median: 280, min: 270, max: 290)
        let harness = try await PipelineHarness(simulator: sim)
        let rateLimit = 30.0
        var config = harness.configuration(group: "shared-budget", maxInFlight: 400)
        config.engine.rateLimit = rateLimit
        let (a, aRun) = try harness.start(config)
        let (b, bRun) = try harness.start(config)
        try await waitUntil("each member owns 2 of the 4 input partitions and half the rate") {
            a.assignedPartitions.count == 2 && b.assignedPartitions.count == 2
                && a.callsPerSecond == rateLimit / 2 && b.callsPerSecond == rateLimit / 2
        }
        _ = try await harness.publishNewTasks(count: 200, perSecond: 2_000)
        try await waitUntil("both members poll") { a.snapshot.polls > 10 && b.snapshot.polls > 10 }

        let first = (calls: harness.simulator.stats().getTaskResultCalls, at: ContinuousClock.now)
        try await Task.sleep(for: .seconds(4))
        let last = (calls: harness.simulator.stats().getTaskResultCalls, at: ContinuousClock.now)
        let seconds = (last.at - first.at).inSeconds
        let calls = last.calls - first.calls
        // Each member's bucket may have saved its burst (its share of the rate) at the window's start.
        let allowed = rateLimit * seconds + rateLimit + 5
        print("shared budget: \(calls) calls in \(String(format: "%.2f", seconds)) s from two members, limit \(rateLimit)/s (at most \(Int(allowed)))")
        #expect(Double(calls) <= allowed, "the group made \(calls) calls in \(seconds) s against one key's \(rateLimit)/s")
        #expect(Double(calls) >= rateLimit * seconds / 4, "the members had polls due the whole time: \(calls) calls")

        a.shutdown()
        b.shutdown()
        try await aRun.value
        try await bRun.value
        await harness.shutdown()
    }

    @Test("a burst beyond the budget waits in Kafka, and no solvable task expires")
    func burstWaitsInKafka() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .init(median: 15, min: 5, max: 30)
        let harness = try await PipelineHarness(simulator: sim)
        let outputs = try harness.outputs()
        // 20 calls/s; the in-flight bound is what that budget polls on schedule,
        // 2 x rate x interval (as `ezpoll run` sets it).
        let rateLimit = 20.0
        var config = harness.configuration(group: "burst", maxInFlight: 10_000)
        config.engine.rateLimit = rateLimit
        config.engine.maxInFlight = max(1, Int(2 * rateLimit * Double(config.engine.policy.interval.milliseconds) / 1_000))
        config.engine.resumeBelow = config.engine.maxInFlight * 9 / 10
        let bound = config.engine.maxInFlight
        let (pipeline, run) = try harness.start(config)
        try await waitUntil("assigned") { pipeline.assignedPartitions.count == 4 }

        // 100 tasks at once: far more than the budget keeps in flight.
        let tasks = try await harness.publishNewTasks(count: 100, perSecond: 100_000)
        let sawBacklog = Locked(false)
        let sawOverBound = Locked(0)
        try await waitUntil("every task has an output", timeout: 120) {
            let inFlight = pipeline.inFlight
            if inFlight > bound { sawOverBound.withLock { $0 = max($0, inFlight) } }
            // Unread in Kafka, or fetched before the pause and held untracked (both count
            // as consumer lag: nothing of them is committed).
            if pipeline.isInputPaused, pipeline.heldInput > 0 || pipeline.snapshot.recordsConsumed < tasks.count {
                sawBacklog.withLock { $0 = true }
            }
            return Set(outputs.all.compactMap(\.taskId)).isSuperset(of: tasks)
        }
        #expect(sawBacklog.current, "the input paused while records waited unread or held")
        #expect(sawOverBound.current == 0, "never more than \(bound) tasks held (saw \(sawOverBound.current))")
        let all = outputs.all
        let expired = all.filter { ($0.json["reason"] as? String) == "expired" }
        let solved = all.filter { $0.topic == PipelineHarness.topics.solutions }
        print("burst: \(tasks.count) tasks, at most \(bound) in flight, \(solved.count) solved, \(expired.count) expired, \(harness.simulator.stats().getTaskResultCalls) calls")
        #expect(expired.isEmpty, "a task expired though the budget could have polled it: \(expired.compactMap(\.taskId))")
        #expect(solved.count == tasks.count)

        pipeline.shutdown()
        try await run.value
        await outputs.close()
        await harness.shutdown()
    }
}
