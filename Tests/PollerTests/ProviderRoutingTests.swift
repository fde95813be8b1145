import Foundation
import Kafka
import Poller
import Simulator
import TaskAPI
import Testing
import TestSupport

/// Several providers at once, over real HTTP: two simulators stand for two providers with
/// keys of their own; each event's `provider` must reach its own API with its own key
/// (a call to the wrong one would be answered ERROR_KEY_DOES_NOT_EXIST).
@Suite("Providers per event", .serialized)
struct ProviderRoutingTests {
    @Test("each event is polled at the provider it names, with that provider's key; an unknown one is a dead letter")
    func eventsReachTheirProvider() async throws {
        let harness = try await PipelineHarness()
        var otherConfig = SimulatorConfig()
        otherConfig.timeScale = PipelineHarness.timeScale
        otherConfig.validKeys = ["other-key-0123456789"]
        otherConfig.solveTime = .init(median: 15, min: 2, max: 60)
        let other = try await SimulatorServer.start(config: otherConfig)
        let otherClient = try TaskResultClient(profile: ProviderProfile.capsolver.with(baseURL: other.baseURL), logger: harness.logger)
        let outputs = try harness.outputs()

        var config = harness.configuration(group: "providers")
        config.engine.providers = [
            ProviderRoute(name: "ez-captcha", policy: config.engine.policy, defaultClientKey: ClientKey(PipelineHarness.goodKey)),
            ProviderRoute(name: "capsolver", policy: config.engine.policy, defaultClientKey: ClientKey("other-key-0123456789")),
        ]
        let pipeline = try Pipeline(configuration: config, client: harness.client, providerClients: ["capsolver": otherClient],
                                    logger: harness.logger)
        let run = Task { try await pipeline.run() }

        let ez = harness.simulator.createTasks(count: 30, clientKey: PipelineHarness.goodKey)
        let cs = other.createTasks(count: 30, clientKey: "other-key-0123456789")
        var events = ez.map { PipelineHarness.event(taskId: $0) }
        events += cs.map { PipelineHarness.event(taskId: $0, extra: #","provider":"CAPSOLVER""#) }
        events.append(PipelineHarness.event(taskId: "nowhere", extra: #","provider":"no-such-provider""#))
        try await harness.publish(events)
        try await waitUntil("every event has an output") {
            Set(outputs.all.compactMap(\.taskId)).isSuperset(of: ez + cs)
                && outputs.all.contains { $0.topic == PipelineHarness.topics.deadLetters }
        }

        let all = outputs.all
        let solved = Set(all.filter { $0.topic == PipelineHarness.topics.solutions }.compactMap(\.taskId))
        #expect(solved == Set(ez + cs), "every task solved at its own provider: \(all.filter { $0.topic != PipelineHarness.topics.solutions }.map(\.json))")
        #expect(all.filter { ($0.json["provider"] as? String) == "capsolver" }.count == 30, "outputs name the configured provider")
        let letter = try #require(all.first { $0.topic == PipelineHarness.topics.deadLetters })
        #expect((letter.json["reason"] as? [String: Any])?["code"] as? String == "unknown_provider")
        #expect(harness.simulator.stats().tasksPolled == 30 && other.stats().tasksPolled == 30, "no task polled at the other provider")
        #expect(harness.simulator.stats().unknownTaskCalls == 0 && other.stats().unknownTaskCalls == 0)

        pipeline.shutdown()
        try await run.value
        await outputs.close()
        await otherClient.shutdown()
        await other.stop()
        await harness.shutdown()
    }
}
