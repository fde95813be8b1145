import Foundation
import Kafka
import Poller
import Simulator
import Testing
import TestSupport

/// RELIABILITY.md scenario 6 at full size: an `ezpoll run` process fed 10,000 hostile
/// records mixed with valid events stays up, turns each bad record into exactly one
/// dead letter, resolves every valid event, and its memory does not grow with the
/// amount of input.
@Suite("hostile input against an ezpoll run process", .serialized)
struct HostileInputTests {
    /// One record to publish, and what the pipeline must make of it.
    struct Planned {
        var key: [UInt8]?
        var value: [UInt8]?
        /// The dead-letter code it must get; nil for a valid event, "" when any code will do.
        var expectedCode: String?
    }

    static let oneMiB = 1 << 20

    /// Where a record landed in the input topic.
    struct Position: Hashable {
        var partition: Int
        var offset: Int
    }

    /// `count` hostile records of ten kinds; `largeValues` of them are 1 MiB.
    static func hostile(count: Int, largeValues: Int, rng: inout SeededRandom) -> [Planned] {
        func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        var records: [Planned] = []
        for i in 0..<count {
            let key: [UInt8]? = i % 7 == 0 ? nil : Array("bad-\(i)".utf8)
            let event = Array(#"{"taskId":"t-\#(i)","createdAt":"2026-11-29T10:00:00Z","metadata":{"n":\#(i)}}"#.utf8)
            switch i % 10 {
            case 0: // random bytes
                records.append(Planned(key: key, value: bytes(Int.random(in: 1...300, using: &rng)), expectedCode: ""))
            case 1: // a valid event cut short
                records.append(Planned(key: key, value: Array(event[..<Int.random(in: 1..<event.count, using: &rng)]), expectedCode: "invalid_json"))
            case 2: // deep nesting, inside a field or at the top
                let depth = Int.random(in: 40...5_000, using: &rng)
                let nested = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
                let text = i % 20 == 2 ? #"{"taskId":"t-\#(i)","metadata":{"a":\#(nested)}}"# : nested
                records.append(Planned(key: key, value: Array(text.utf8), expectedCode: "nesting_too_deep"))
            case 3: // huge strings
                let huge = String(repeating: "x", count: Int.random(in: 1_100...20_000, using: &rng))
                records.append(i % 20 == 3
                    ? Planned(key: key, value: Array(#"{"taskId":"\#(huge)"}"#.utf8), expectedCode: "invalid_task_id")
                    : Planned(key: key, value: Array(#"{"taskId":"t-\#(i)","correlationId":"\#(huge)"}"#.utf8), expectedCode: "invalid_field"))
            case 4: // wrong types
                let wrong: [(String, String)] = [
                    (#"{"taskId":[1]}"#, "invalid_task_id"), (#"{"taskId":{"a":1}}"#, "invalid_task_id"),
                    (#"{"taskId":1.5}"#, "invalid_task_id"), (#"{"taskId":true}"#, "invalid_task_id"),
                    (#"{"taskId":"t","createdAt":5}"#, "invalid_created_at"), (#"{"taskId":"t","metadata":"m"}"#, "invalid_metadata"),
                    (#"{"taskId":"t","clientKey":7}"#, "invalid_field"), (#"["taskId","t"]"#, "not_an_object"),
                    (#"{"id":"t"}"#, "missing_task_id"), (#"{"taskId":"  "}"#, "empty_task_id"),
                ]
                let (text, code) = wrong[(i / 10) % wrong.count]
                records.append(Planned(key: key, value: Array(text.utf8), expectedCode: code))
            case 5: // invalid UTF-8 inside a string
                var value = Array(#"{"taskId":"t-\#(i)","taskType":"ab"}"#.utf8)
                value.insert(contentsOf: [[0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80]][i / 10 % 4],
                             at: value.count - 3)
                records.append(Planned(key: key, value: value, expectedCode: "not_utf8"))
            case 6: // null value
                records.append(Planned(key: key, value: nil, expectedCode: "null_value"))
            case 7: // a duplicate field
                records.append(Planned(key: key, value: Array(#"{"taskId":"a","taskId":"b"}"#.utf8), expectedCode: "duplicate_field"))
            case 8 where i / 10 < largeValues: // 1 MiB values
                records.append(Planned(key: key, value: bytes(oneMiB), expectedCode: "value_too_large"))
            case 8 where i / 10 < largeValues + 100: // just over the 64 KiB limit
                records.append(Planned(key: key, value: bytes(64 * 1024 + 1), expectedCode: "value_too_large"))
            case 8: // raw control characters inside a string
                records.append(Planned(key: key, value: Array("{\"taskId\":\"a\u{0}b\n\"}".utf8), expectedCode: "invalid_json"))
            default: // empty and whitespace-only values
                records.append(Planned(key: key, value: i % 20 == 9 ? [] : Array(" \n\t ".utf8), expectedCode: "invalid_json"))
            }
        }
        return records
    }

    /// Resident and peak resident memory of a process, in bytes (from /proc).
    static func memory(of pid: Int32) -> (rss: Int, peak: Int)? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func kib(_ field: String) -> Int? {
            status.split(separator: "\n").first { $0.hasPrefix(field) }
                .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
        }
        guard let rss = kib("VmRSS:"), let peak = kib("VmHWM:") else { return nil }
        return (rss * 1024, peak * 1024)
    }

    @Test("10,000 hostile records among valid events: one dead letter each, every valid task resolves, memory bounded")
    func hostileInput() async throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["EZPOLL_HOSTILE_SEED"] ?? "") ?? UInt64.random(in: 0...UInt64.max)
        var rng = SeededRandom(seed: seed)
        print("hostile: seed \(seed) (EZPOLL_HOSTILE_SEED replays it)")
        // 24 input partitions (about 2.5 MB each): the mock cluster keeps only ~5 MiB per partition.
        let harness = try await PipelineHarness(partitions: 24, outputPartitions: 16)
        let good = harness.simulator.createTasks(count: 2_000, clientKey: PipelineHarness.goodKey)
        var planned = Self.hostile(count: 10_000, largeValues: 32, rng: &rng)
        planned += good.enumerated().map { i, id in
            let event = PipelineHarness.event(taskId: id)
            return Planned(key: i % 5 == 0 ? nil : event.key, value: event.value, expectedCode: nil)
        }
        planned.shuffle(using: &rng)

        // The producer of hostile input may send up to 2 MB per record.
        var producerConfig = KafkaProducerConfiguration(bootstrapServers: harness.cluster.bootstrapServers)
        producerConfig.properties["message.max.bytes"] = "2000000"
        let producer = try KafkaProducer(configuration: producerConfig, logger: harness.logger)
        let placed = Locked<[Position: Int]>([:]) // -> index into `planned`
        // Each record goes to the partition with the fewest bytes so far: round-robin could
        // stack several 1 MiB values on one partition past the mock's ~5 MiB, and the mock
        // would drop unread records to make room.
        var partitionBytes = [Int](repeating: 0, count: 24)
        let partitionOf: [Int] = planned.map { record in
            let partition = partitionBytes.indices.min { partitionBytes[$0] < partitionBytes[$1] }!
            partitionBytes[partition] += (record.value?.count ?? 0) + (record.key?.count ?? 0) + 64
            return partition
        }
        print("hostile: at most \(partitionBytes.max()! >> 10) KiB published to one input partition")
        func publish(_ range: Range<Int>) async throws {
            for i in range {
                try await producer.enqueue(KafkaOutgoingRecord(topic: PipelineHarness.topics.input, partition: Int32(partitionOf[i]),
                                                               key: planned[i].key, value: planned[i].value)) { result in
                    if case .success(let report) = result {
                        placed.withLock { $0[Position(partition: Int(report.partition), offset: Int(report.offset))] = i }
                    }
                }
            }
            try await producer.flush()
        }

        let outputs = try harness.outputs()
        let run = try ProcessTestRun("hostileInput", harness: harness, group: "hostile-group", partitions: 24)
        let member = try run.start(key: PipelineHarness.goodKey)
        let pid = member.process.processIdentifier
        try await run.wait("the member started", timeout: 60) { Self.memory(of: pid) != nil }

        // Two equal waves: memory after the second must not have grown with the input.
        let half = planned.count / 2
        try await publish(0..<half)
        func waitForOutputs(_ what: String, _ count: Int) async throws {
            try await run.wait(what, timeout: 240) { outputs.count >= count }
        }
        try await waitForOutputs("outputs for the first wave", half)
        #expect(member.process.isRunning, "still up after the first wave")
        let afterFirst = try #require(Self.memory(of: pid))
        try await publish(half..<planned.count)
        try await waitForOutputs("outputs for every record", planned.count)
        #expect(member.process.isRunning, "still up after the second wave")
        let afterSecond = try #require(Self.memory(of: pid))
        let exitSeconds = member.terminate()
        await run.check(exitSeconds < 30, "exit within the shutdown bound: \(exitSeconds) s")
        await run.check(member.process.terminationStatus == 0, "exit status \(member.process.terminationStatus)")
        await producer.close()

        let placement = placed.current
        #expect(placement.count == planned.count, "every record was published")
        let all = outputs.all
        var deadLettersPer: [Int: Int] = [:]
        var wrongCodes: [String] = []
        for letter in all where letter.topic == PipelineHarness.topics.deadLetters {
            let source = try #require(letter.json["source"] as? [String: Any])
            let position = Position(partition: source["partition"] as? Int ?? -1, offset: source["offset"] as? Int ?? -1)
            let index = try #require(placement[position], "a dead letter for an unknown record \(position)")
            deadLettersPer[index, default: 0] += 1
            let code = (letter.json["reason"] as? [String: Any])?["code"] as? String
            if let expected = planned[index].expectedCode, !expected.isEmpty, code != expected {
                wrongCodes.append("\(expected) expected, got \(code ?? "none") for \(String(decoding: (planned[index].value ?? []).prefix(80), as: UTF8.self))")
            }
        }
        let bad = planned.indices.filter { planned[$0].expectedCode != nil }
        #expect(bad.count == 10_000)
        #expect(bad.allSatisfy { deadLettersPer[$0] == 1 }, "each bad record has exactly one dead letter: \(bad.filter { deadLettersPer[$0] != 1 }.prefix(5))")
        #expect(deadLettersPer.keys.allSatisfy { planned[$0].expectedCode != nil }, "no valid event was dead-lettered")
        #expect(wrongCodes.isEmpty, "\(wrongCodes.count) wrong reasons, e.g. \(wrongCodes.prefix(3))")
        let results = all.filter { $0.topic != PipelineHarness.topics.deadLetters }
        #expect(Set(results.compactMap(\.taskId)) == Set(good), "every valid task resolved")
        #expect(results.count == good.count, "one result per valid task")
        try SchemaValidator.validate(all.map { ($0.schemaHeader, $0.value) })

        // Memory: what is resident once a wave is done must not grow with a second, equal
        // wave (~40 MB of input each) by more than the records in transit can take at any
        // moment: 16 MiB prefetched by librdkafka plus 32 MiB handed to the pipeline. (A
        // wave can end with those buffers fuller than the last; measured growth: 6-28 MiB.)
        let mib = { (bytes: Int) in String(format: "%.1f MiB", Double(bytes) / Double(1 << 20)) }
        print("hostile (seed \(seed)): 10000 bad + 2000 good records, \(all.count) outputs; RSS after wave 1 \(mib(afterFirst.rss)) (peak \(mib(afterFirst.peak))), after wave 2 \(mib(afterSecond.rss)) (peak \(mib(afterSecond.peak)))")
        #expect(afterSecond.rss - afterFirst.rss <= (16 + 32) << 20, "resident memory grew with the input: \(mib(afterFirst.rss)) -> \(mib(afterSecond.rss))")
        run.finish()
        await outputs.close()
        await harness.shutdown()
    }
}
