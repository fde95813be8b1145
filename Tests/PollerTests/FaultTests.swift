import Foundation
import Kafka
import Poller
import Simulator
import TaskAPI
import Testing
import TestSupport

/// Faults injected on purpose: an API storm and a broker outage. Nothing is lost,
/// and every task ends with the right outcome.
@Suite("Faults", .serialized)
struct FaultTests {
    @Test("API storm (30% 5xx, 10% timeouts, malformed JSON, 429 with Retry-After, overload): every task ends correctly, no ban")
    func apiStorm() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .init(median: 15, min: 2, max: 60)
        sim.ban = .init(maxErrors: 100, window: 60, duration: 600) // like the real service
        sim.faults.http500Probability = 0.15
        sim.faults.http503Probability = 0.15
        sim.faults.slowProbability = 0.10
        sim.faults.slowDelayReal = 1.5
        sim.faults.malformedProbability = 0.03
        sim.faults.truncatedProbability = 0.02
        sim.faults.http429Probability = 0.03
        sim.faults.retryAfterSeconds = 1
        sim.faults.serviceUnavailableProbability = 0.05
        // The faults act in real time (a 0.5 s read timeout, a 1 s Retry-After, 1.5 s slow
        // answers) while the window, the ban rule and the error budget are API time: each
        // timeout eats API time in proportion to the time scale. At the suite's 20 the
        // window is 15 real seconds, and on a loaded machine 454 of 1,000 tasks expired
        // that way (2026-12-03), a count that says how fast the machine was, not how ezpoll
        // rides a storm. At 10 the window is 30 s: 976 of 1,000 solved here under the same
        // storm (at 5: 986, in twice the test time).
        let harness = try await PipelineHarness(simulator: sim, timeScale: 10)
        // A read timeout below the simulator's slow answers: those calls time out.
        let client = try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: harness.simulator.baseURL),
                                          configuration: .init(readTimeout: .milliseconds(500), requestTimeout: .seconds(1)),
                                          logger: harness.logger)
        let tasks = harness.simulator.createTasks(count: 1_000, clientKey: PipelineHarness.goodKey)
        let outputs = try harness.outputs()
        let (pipeline, run) = try harness.start(harness.configuration(group: "storm-group"), client: client)
        try await harness.publish(tasks.map { PipelineHarness.event(taskId: $0) })
        try await waitUntil("1,000 outputs", timeout: 180) { outputs.count >= 1_000 }
        pipeline.shutdown()
        try await run.value
        await client.shutdown()

        let stats = harness.simulator.stats()
        let all = outputs.all
        #expect(all.count == 1_000)
        #expect(Set(all.compactMap(\.taskId)) == Set(tasks))
        var reasons: [String: Int] = [:]
        for output in all where output.topic == PipelineHarness.topics.failures {
            reasons[output.json["reason"] as? String ?? "?", default: 0] += 1
        }
        let solved = all.filter { $0.topic == PipelineHarness.topics.solutions }.count
        // Failures are only deadline failures caused by the storm, never a wrong class.
        #expect(Set(reasons.keys).isSubset(of: ["expired", "transient_errors"]), "\(reasons)")
        #expect(solved >= 900, "most tasks solved through the storm: \(solved), failures \(reasons)")
        #expect(stats.bansTriggered == 0)
        #expect(stats.callsAfterExpiry == 0)
        print("storm: \(solved) solved, failures \(reasons), \(stats.getTaskResultCalls) calls, faults \(stats.faults), bans \(stats.bansTriggered)")
        await outputs.close()
        await harness.shutdown()
    }

    @Test("broker down for 10 s mid-run: not ready meanwhile, recovers without a restart, loses nothing")
    func brokerOutage() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .init(median: 15, min: 2, max: 40)
        let harness = try await PipelineHarness(simulator: sim)
        let tasks = harness.simulator.createTasks(count: 1_000, clientKey: PipelineHarness.goodKey)
        let outputs = try harness.outputs()
        let (pipeline, run) = try harness.start(harness.configuration(group: "outage-group"))
        try await harness.publish(tasks.map { PipelineHarness.event(taskId: $0) })
        try await waitUntil("first outputs") { outputs.count >= 100 }
        #expect(pipeline.health().isReady)
        try harness.cluster.setBrokerDown(1)
        let downAt = ContinuousClock.now
        try await waitUntil("not ready while the broker is down") { !pipeline.health().isReady }
        let noticed = ContinuousClock.now - downAt
        try await Task.sleep(until: downAt + .seconds(10)) // the outage itself: time is what is injected here
        try harness.cluster.setBrokerUp(1)
        let upAt = ContinuousClock.now
        try await waitUntil("ready again after the outage") { pipeline.health().isReady }
        let readyAgain = ContinuousClock.now - upAt
        try await waitUntil("every task has an output after the outage", timeout: 180) {
            Set(outputs.all.compactMap(\.taskId)).count >= 1_000
        }
        pipeline.shutdown()
        try await run.value
        #expect(Set(outputs.all.compactMap(\.taskId)) == Set(tasks), "nothing lost")
        let ms = { (d: Duration) in d.components.seconds * 1_000 + d.components.attoseconds / 1_000_000_000_000_000 }
        print("outage: not ready \(ms(noticed)) ms after the broker went down, ready \(ms(readyAgain)) ms after it came back; \(outputs.all.count) outputs for 1000 tasks (duplicates from retried deliveries: \(outputs.all.count - 1_000))")
        await outputs.close()
        await harness.shutdown()
    }

    @Test("errors pushed for Produce, Fetch and OffsetCommit, and 100 ms broker latency: nothing lost")
    func brokerRequestErrors() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .init(median: 15, min: 2, max: 40)
        let harness = try await PipelineHarness(simulator: sim)
        let tasks = harness.simulator.createTasks(count: 600, clientKey: PipelineHarness.goodKey)
        let outputs = try harness.outputs()
        var config = harness.configuration(group: "request-errors-group")
        // One Produce request in flight: the mock broker does not check an idempotent
        // producer's sequence numbers as Kafka does, so with several in flight a later
        // batch can land while an earlier one is retried, and librdkafka's implicit ack
        // of the earlier one is then false (see KafkaRoundTripTests.ackedMeansStored).
        config.producer.properties["max.in.flight.requests.per.connection"] = "1"
        let (pipeline, run) = try harness.start(config)
        try await harness.publish(tasks.map { PipelineHarness.event(taskId: $0) })
        try await waitUntil("first outputs") { outputs.count >= 50 }
        try harness.cluster.setBrokerLatency(1, milliseconds: 100)
        try harness.cluster.pushRequestErrors(.produce, Array(repeating: .notLeaderForPartition, count: 20))
        try harness.cluster.pushRequestErrors(.fetch, Array(repeating: .notLeaderForPartition, count: 20))
        try harness.cluster.pushRequestErrors(.offsetCommit, Array(repeating: .requestTimedOut, count: 10))
        try await waitUntil("every task has an output", timeout: 180) { Set(outputs.all.compactMap(\.taskId)).count >= 600 }
        try harness.cluster.setBrokerLatency(1, milliseconds: 0)
        pipeline.shutdown()
        try await run.value
        #expect(Set(outputs.all.compactMap(\.taskId)) == Set(tasks), "nothing lost")
        print("request errors: \(outputs.all.count) outputs for 600 tasks")
        await outputs.close()
        await harness.shutdown()
    }
}
