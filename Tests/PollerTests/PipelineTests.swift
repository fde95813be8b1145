import Foundation
import Kafka
import Poller
import Simulator
import TaskAPI
import Testing
import TestSupport

@Suite("Pipeline over the embedded cluster and the simulator", .serialized)
struct PipelineTests {
    @Test("2,000 tasks with mixed outcomes: one output each, on the right topic, keyed by taskId, schema-valid")
    func mixedOutcomes() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .init(median: 15, min: 2, max: 60)
        sim.unsolvableFraction = 0.1
        let harness = try await PipelineHarness(simulator: sim)
        let solvable = harness.simulator.createTasks(count: 1_500, clientKey: PipelineHarness.goodKey)
        let badKeyTasks = harness.simulator.createTasks(count: 250, clientKey: PipelineHarness.goodKey)
        #expect(solvable.count == 1_500 && badKeyTasks.count == 250)
        let expiredIds = (0..<250).map { "expired-\($0)" }
        var events = solvable.map { PipelineHarness.event(taskId: $0, extra: #","correlationId":"c-\#($0)","metadata":{"n":1}"#) }
        events += badKeyTasks.map { PipelineHarness.event(taskId: $0, extra: #","clientKey":"not-a-valid-key""#) }
        events += expiredIds.map { PipelineHarness.expiredEvent(taskId: $0) }
        events.shuffle()

        let outputs = try harness.outputs()
        let (pipeline, run) = try harness.start(harness.configuration())
        try await harness.publish(events)
        try await waitUntil("2,000 outputs", timeout: 120) { outputs.count >= 2_000 }
        pipeline.shutdown()
        try await run.value

        let all = outputs.all
        #expect(all.count == 2_000, "exactly one output per input")
        var byTask: [String: Output] = [:]
        for output in all {
            let taskId = try #require(output.taskId)
            #expect(byTask.updateValue(output, forKey: taskId) == nil, "one output for \(taskId)")
            #expect(output.key == taskId, "keyed by taskId")
        }
        let sim2 = harness.simulator.stats()
        for id in solvable {
            let output = try #require(byTask[id])
            if output.topic == PipelineHarness.topics.solutions {
                #expect(output.json["status"] as? String == "ready")
                #expect(output.json["correlationId"] as? String == "c-\(id)")
                #expect((output.json["metadata"] as? [String: Any])?["n"] as? Int == 1)
            } else {
                #expect(output.topic == PipelineHarness.topics.failures)
                #expect(output.json["reason"] as? String == "task_error")
                #expect(output.json["errorCode"] as? String == "ERROR_CAPTCHA_UNSOLVABLE")
            }
        }
        let solved = solvable.filter { byTask[$0]?.topic == PipelineHarness.topics.solutions }.count
        #expect(solved > 1_200 && solved < 1_500, "about 10% unsolvable, got \(1_500 - solved)")
        for id in badKeyTasks {
            #expect(byTask[id]?.json["reason"] as? String == "account_error")
        }
        for id in expiredIds {
            #expect(byTask[id]?.json["reason"] as? String == "expired")
            #expect(byTask[id]?.json["polls"] as? Int == 0)
        }
        #expect(sim2.callsAfterExpiry == 0)
        try SchemaValidator.validate(all.map { ($0.schemaHeader, $0.value) })
        #expect(!all.contains { String(decoding: $0.value, as: UTF8.self).contains("not-a-valid-key") }, "no clientKey in any output")
        await outputs.close()
        await harness.shutdown()
    }

    @Test("bad records become one dead letter each, with the reason; the good ones resolve; offsets reach the end")
    func deadLetters() async throws {
        let harness = try await PipelineHarness()
        let good = harness.simulator.createTasks(count: 400, clientKey: PipelineHarness.goodKey)
        var records: [(key: [UInt8]?, value: [UInt8]?)] = good.map { PipelineHarness.event(taskId: $0) }
        var expected: [String: String] = [:] // record key -> dead-letter code
        let bad: [(String, [UInt8]?)] = [
            ("null_value", nil),
            ("invalid_json", Array("{not json".utf8)),
            ("invalid_json", Array(#"{"taskId":"abc""#.utf8)),
            ("not_an_object", Array("[1,2,3]".utf8)),
            ("missing_task_id", Array(#"{"id":"x"}"#.utf8)),
            ("empty_task_id", Array(#"{"taskId":""}"#.utf8)),
            ("invalid_task_id", Array(#"{"taskId":true}"#.utf8)),
            ("invalid_created_at", Array(#"{"taskId":"t","createdAt":"yesterday"}"#.utf8)),
            ("not_utf8", [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D]),
            ("value_too_large", Array(("{\"taskId\":\"" + String(repeating: "x", count: 70_000) + "\"}").utf8)),
        ]
        for i in 0..<200 {
            let (code, value) = bad[i % bad.count]
            let key = "bad-\(i)"
            expected[key] = code
            records.append((Array(key.utf8), value))
        }
        records.shuffle()
        let outputs = try harness.outputs()
        let config = harness.configuration(group: "dlq-group")
        let (pipeline, run) = try harness.start(config)
        try await harness.publish(records)
        try await waitUntil("600 outputs", timeout: 120) { outputs.count >= 600 }

        // Offsets reach the end of every input partition once everything is acknowledged.
        let probe = try KafkaConsumer(configuration: KafkaConsumerConfiguration(bootstrapServers: harness.cluster.bootstrapServers,
                                                                                groupID: "dlq-group"), logger: harness.logger)
        let partitions = (0..<4).map { TopicPartition(PipelineHarness.topics.input, Int32($0)) }
        try await waitUntil("committed offsets at the end") {
            let committed = try await probe.committedOffsets(for: partitions)
            return partitions.allSatisfy { committed[$0] == 150 }
        }
        pipeline.shutdown()
        try await run.value
        await probe.close()

        let all = outputs.all
        #expect(all.count == 600)
        let deadLetters = all.filter { $0.topic == PipelineHarness.topics.deadLetters }
        #expect(deadLetters.count == 200)
        for letter in deadLetters {
            let key = try #require(letter.key)
            let reason = letter.json["reason"] as? [String: Any]
            #expect(reason?["code"] as? String == expected[key], "\(key)")
            #expect((reason?["message"] as? String)?.isEmpty == false)
        }
        let resolved = Set(all.compactMap { $0.topic != PipelineHarness.topics.deadLetters ? $0.taskId : nil })
        #expect(resolved == Set(good))
        try SchemaValidator.validate(all.map { ($0.schemaHeader, $0.value) })
        await outputs.close()
        await harness.shutdown()
    }

    @Test("one bad key among good keys: its tasks fail as account errors; the others are unaffected")
    func badKeyIsolated() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey, "second-good-key"]
        sim.solveTime = .fixed(10)
        let harness = try await PipelineHarness(simulator: sim)
        let tasks = harness.simulator.createTasks(count: 300, clientKey: PipelineHarness.goodKey)
        let keys = [PipelineHarness.goodKey, "second-good-key", "revoked-key"]
        var keyOf: [String: String] = [:]
        let events = tasks.enumerated().map { i, id -> (key: [UInt8]?, value: [UInt8]?) in
            keyOf[id] = keys[i % 3]
            return PipelineHarness.event(taskId: id, extra: #","clientKey":"\#(keys[i % 3])""#)
        }
        let outputs = try harness.outputs()
        let (pipeline, run) = try harness.start(harness.configuration(group: "keys-group"))
        try await harness.publish(events)
        try await waitUntil("300 outputs", timeout: 120) { outputs.count >= 300 }
        pipeline.shutdown()
        try await run.value
        let stats = harness.simulator.stats()
        for output in outputs.all {
            let id = try #require(output.taskId)
            if keyOf[id] == "revoked-key" {
                #expect(output.json["reason"] as? String == "account_error")
                #expect(output.json["errorCode"] as? String == "ERROR_KEY_DOES_NOT_EXIST")
            } else {
                #expect(output.topic == PipelineHarness.topics.solutions)
            }
        }
        // The breaker stops calls with the dead key after its first answers: far fewer
        // calls than its 100 tasks (at most one per call slot in flight at that moment).
        let keyErrors = stats.errorsByCode["ERROR_KEY_DOES_NOT_EXIST"] ?? 0
        #expect(keyErrors <= 64, "calls with the dead key stopped: \(keyErrors) key errors")
        #expect(!outputs.all.contains { String(decoding: $0.value, as: UTF8.self).contains("revoked-key") })
        await outputs.close()
        await harness.shutdown()
    }

    @Test("ban for 60 API s: no call reaches the API while banned; tasks whose deadline passes meanwhile expire uncalled; the rest finish after it")
    func ban() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        sim.solveTime = .fixed(20)
        sim.ban = .init(maxErrors: 5, window: 300, duration: 60)
        let harness = try await PipelineHarness(simulator: sim)
        let tasks = harness.simulator.createTasks(count: 200, clientKey: PipelineHarness.goodKey)
        let late = harness.simulator.createTasks(count: 50, clientKey: PipelineHarness.goodKey)
        // Unknown ids provoke error answers: the simulator bans on the 6th within its window.
        let provokers = (0..<6).map { "unknown-\($0)" }
        let outputs = try harness.outputs()
        let config = harness.configuration(group: "ban-group")
        let (pipeline, run) = try harness.start(config)
        try await harness.publish(provokers.map { PipelineHarness.event(taskId: $0) } + tasks.map { PipelineHarness.event(taskId: $0) })
        try await waitUntil("the simulator banned", timeout: 60) { harness.simulator.stats().bansTriggered > 0 }
        // Tasks whose deadline falls 1 s from now, inside the 3 s (60 API s) ban: they must
        // fail as expired without a single call.
        let deadlineIn1s = WallClock.now() - (config.engine.policy.window - config.engine.policy.safetyMargin) + .seconds(1)
        try await harness.publish(late.map { PipelineHarness.event(taskId: $0, createdAt: deadlineIn1s) })
        try await waitUntil("256 outputs", timeout: 120) { outputs.count >= 256 }
        pipeline.shutdown()
        try await run.value
        let stats = harness.simulator.stats()
        print("ban: simulator stats \(stats.errorsByCode), bans \(stats.bansTriggered), banned answers \(stats.bannedResponses), outputs \(outputs.all.compactMap { $0.json["reason"] as? String })")
        #expect(stats.bansTriggered == 1, "exactly one ban: ezpoll stopped calling while banned")
        #expect(stats.bannedResponses <= 64, "only calls already in flight when the ban began: \(stats.bannedResponses)")
        let solved = outputs.all.filter { $0.topic == PipelineHarness.topics.solutions }.compactMap(\.taskId)
        #expect(Set(solved) == Set(tasks), "every task not past its deadline finished after the ban")
        let lateOutputs = outputs.all.filter { late.contains($0.taskId ?? "") }
        #expect(lateOutputs.count == 50 && lateOutputs.allSatisfy { $0.json["reason"] as? String == "expired" && $0.json["errorCode"] as? String == "ERROR_IP_BANNED" },
                "tasks whose deadline passed during the ban failed as expired: \(lateOutputs.map { $0.json["reason"] as? String ?? "?" })")
        #expect(stats.tasksPolled == 200, "the expired tasks were never polled: \(stats.tasksPolled) tasks polled")
        await outputs.close()
        await harness.shutdown()
    }

    @Test("graceful stop midway, then a new member: every task ends once; the new member skips what the commit metadata records as finished")
    func stopAndResume() async throws {
        var sim = SimulatorConfig()
        sim.validKeys = [PipelineHarness.goodKey]
        // Solve times spread wide (0.1 to 10 real s), so at the stop many tasks are still
        // running while later ones in the same partitions have finished.
        sim.solveTime = .init(median: 60, min: 2, max: 200)
        let harness = try await PipelineHarness(simulator: sim)
        let tasks = harness.simulator.createTasks(count: 1_000, clientKey: PipelineHarness.goodKey)
        let outputs = try harness.outputs()
        let config = harness.configuration(group: "restart-group")
        let (first, firstRun) = try harness.start(config)
        try await harness.publish(tasks.map { PipelineHarness.event(taskId: $0) })
        // The pipeline's own count: the output collector may still be joining its group.
        try await waitUntil("some outputs acknowledged") { first.snapshot.acknowledged >= 300 }
        first.shutdown()
        try await firstRun.value
        let afterFirst = outputs.count
        let probe = try KafkaConsumer(configuration: KafkaConsumerConfiguration(bootstrapServers: harness.cluster.bootstrapServers,
                                                                                groupID: "restart-group"), logger: harness.logger)
        let partitions = (0..<4).map { TopicPartition(PipelineHarness.topics.input, Int32($0)) }
        let committed = try await probe.committed(for: partitions)
        await probe.close()
        // The commit records the finished offsets above each watermark.
        let recordedFinished = try committed.values.reduce(0) { sum, commit in
            sum + (try OffsetCommitMetadata.decode(commit.metadata ?? "", base: commit.offset)).reduce(0) { $0 + $1.count }
        }
        #expect(recordedFinished > 0, "tasks finish out of order, so some finished above the watermarks")

        let (second, secondRun) = try harness.start(config)
        try await waitUntil("every task has an output") {
            Set(outputs.all.compactMap(\.taskId)).count >= 1_000
        }
        second.shutdown()
        try await secondRun.value
        let all = outputs.all
        var count: [String: Int] = [:]
        for output in all { count[output.taskId!, default: 0] += 1 }
        #expect(Set(count.keys) == Set(tasks), "nothing lost")
        let repeated = count.filter { $0.value > 1 }
        #expect(repeated.isEmpty, "a graceful stop repeats nothing: \(repeated.count) tasks published twice")
        #expect(second.snapshot.skippedFinished == recordedFinished, "the new member skipped exactly what the commit recorded")
        print("stop/resume: \(afterFirst) outputs from the first member, watermarks \(committed.values.map(\.offset).sorted()), \(recordedFinished) finished above them in the metadata and skipped by the second member, \(repeated.count) tasks published twice")
        try SchemaValidator.validate(all.map { ($0.schemaHeader, $0.value) })
        await outputs.close()
        await harness.shutdown()
    }
}
