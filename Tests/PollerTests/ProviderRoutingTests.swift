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

        // Both simulators run with the same seed, so they hand out the same 30 task ids:
        // providers' ids can collide (integer ids do), and routing must go by the event's
        // provider, never by its id. The correlationId ties each output to its event.
        let ez = harness.simulator.createTasks(count: 30, clientKey: PipelineHarness.goodKey)
        let cs = other.createTasks(count: 30, clientKey: "other-key-0123456789")
        #expect(ez == cs, "the two providers hand out the same ids (the collision this test is about)")
        var events = ez.enumerated().map { PipelineHarness.event(taskId: $1, extra: #","correlationId":"ez-\#($0)""#) }
        events += cs.enumerated().map { PipelineHarness.event(taskId: $1, extra: #","provider":"CAPSOLVER","correlationId":"cs-\#($0)""#) }
        events.append(PipelineHarness.event(taskId: "nowhere", extra: #","provider":"no-such-provider""#))
        try await harness.publish(events)
        // One output per event: an id's two events end separately, so wait for all 61.
        try await waitUntil("every event has an output") { outputs.count >= events.count }

        let all = outputs.all
        let notSolved = all.filter { $0.topic != PipelineHarness.topics.solutions && $0.key != "nowhere" }.map(\.json)
        #expect(notSolved.isEmpty, "every task solved at its own provider: \(notSolved)")
        #expect(all.count == events.count, "exactly one output per event, got \(all.count)")
        for (prefix, provider, ids) in [("ez-", "ez-captcha", ez), ("cs-", "capsolver", cs)] {
            let mine = all.filter { ($0.json["correlationId"] as? String)?.hasPrefix(prefix) == true }
            let wrong = mine.filter { ($0.json["provider"] as? String) != provider }
            #expect(wrong.isEmpty, "events for \(provider) answered as another provider's: \(wrong.map(\.json))")
            #expect(mine.compactMap(\.taskId).sorted() == ids.sorted(), "each \(provider) event has one output")
        }
        let letter = try #require(all.first { $0.topic == PipelineHarness.topics.deadLetters })
        #expect((letter.json["reason"] as? [String: Any])?["code"] as? String == "unknown_provider")
        for (name, stats) in [("ez-captcha", harness.simulator.stats()), ("capsolver", other.stats())] {
            #expect(stats.tasksPolled == 30, "\(name) polled its own 30 tasks, got \(stats.tasksPolled)")
            #expect(stats.errorsByCode["ERROR_KEY_DOES_NOT_EXIST"] == nil, "a key reached \(name) that is not its own: \(stats.errorsByCode)")
            #expect(stats.unknownTaskCalls == 0)
        }

        pipeline.shutdown()
        try await run.value
        await outputs.close()
        await otherClient.shutdown()
        await other.stop()
        await harness.shutdown()
    }
}
