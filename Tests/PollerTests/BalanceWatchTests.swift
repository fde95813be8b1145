import Foundation
import Kafka
@testable import Poller
import Simulator
import TaskAPI
import Testing
import TestSupport

/// The balance watch over the embedded Kafka cluster and the simulator's getBalance.
@Suite("Balance watch", .serialized)
struct BalanceWatchTests {
    @Test("an empty balance holds the input: tasks wait in Kafka, none is polled or fails; topped up, every task is solved")
    func anEmptyBalanceHoldsTheInput() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .fixed(5)
        sim.balance = 0
        let harness = try await PipelineHarness(simulator: sim)
        let outputs = try harness.outputs()
        let (pipeline, run) = try harness.start(harness.configuration(group: "balance-group"))
        let watch = BalanceWatch(accounts: [.init(provider: harness.client.profile.name, key: ClientKey(PipelineHarness.goodKey), client: harness.client)],
                                 interval: .milliseconds(100), pipeline: pipeline, logger: harness.logger)
        let watching = Task { try await watch.run() }
        try await waitUntil("the watch holds the input", timeout: 60) { !pipeline.accountsWithoutBalance.isEmpty }

        let tasks = harness.simulator.createTasks(count: 40, clientKey: PipelineHarness.goodKey)
        try await harness.publish(tasks.map { PipelineHarness.event(taskId: $0) })
        try await waitUntil("assigned", timeout: 60) { !pipeline.assignedPartitions.isEmpty }
        // Time passes by the watch's own calls: ten more checks, still empty.
        let checks = harness.simulator.stats().getBalanceCalls
        try await waitUntil("ten more balance checks", timeout: 60) { harness.simulator.stats().getBalanceCalls >= checks + 10 }
        #expect(harness.simulator.stats().tasksPolled == 0, "held: no task was taken from Kafka")
        #expect(outputs.count == 0, "and none failed")
        let held = PrometheusText(String(decoding: pipeline.metricsExposition(), as: UTF8.self))
        #expect(held[PipelineMetrics.Name.accountBalance, ["provider": harness.client.profile.name, "key": ClientKey(PipelineHarness.goodKey).fingerprint]] == 0)
        #expect(held[PipelineMetrics.Name.inputPaused] == 1)

        try harness.simulator.updateConfig { $0.balance = 12.5 }
        try await waitUntil("every task solved", timeout: 120) { outputs.count >= tasks.count }
        #expect(pipeline.accountsWithoutBalance.isEmpty)
        #expect(Set(outputs.all.filter { $0.topic == PipelineHarness.topics.solutions }.compactMap(\.taskId)) == Set(tasks))
        let topped = PrometheusText(String(decoding: pipeline.metricsExposition(), as: UTF8.self))
        #expect(topped[PipelineMetrics.Name.accountBalance, ["provider": harness.client.profile.name, "key": ClientKey(PipelineHarness.goodKey).fingerprint]] == 12.5)
        #expect(!topped.text.contains(PipelineHarness.goodKey), "the key itself never appears in a metric")

        watching.cancel()
        _ = try? await watching.value
        pipeline.shutdown()
        try await run.value
        await outputs.close()
        await harness.shutdown()
    }

    @Test("getBalance classifies answers as polls do, over both transports")
    func getBalanceOverBothTransports() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.balance = 3.25
        let server = try await SimulatorServer.start(config: sim)
        for transport in TaskResultClient.Configuration.Transport.allCases {
            let client = try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: server.baseURL),
                                              configuration: .init(transport: transport))
            #expect(await client.getBalance(clientKey: ClientKey(PipelineHarness.goodKey)) == .balance(3.25), "\(transport)")
            guard case .failed(let failure) = await client.getBalance(clientKey: ClientKey("unknown-key-0123456789")) else {
                Issue.record("\(transport): an unknown key has no balance")
                continue
            }
            #expect(failure.failureCode == "ERROR_KEY_DOES_NOT_EXIST", "\(transport): \(failure)")
            #expect(!"\(failure)".contains("unknown-key-0123456789"), "the key is redacted")
            await client.shutdown()
        }
        await server.stop()
    }
}
