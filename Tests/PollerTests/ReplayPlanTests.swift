import Foundation
import Kafka
@testable import Poller
import PollerCore
import TaskModel
import Testing

/// `ezpoll replay`'s decisions without I/O: what a dead letter or failure gives back,
/// which records a filter chooses, and the refusal to copy a record twice.
@Suite("Replay: reading dead letters and failures, filters, the twice-refusal")
struct ReplayPlanTests {
    static let input = "captcha.tasks"
    static let dlq = "captcha.tasks.dlq"
    static let failures = "captcha.failures"
    static let traceparent = KafkaHeader(name: "traceparent", string: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")

    /// A dead letter as the pipeline writes it, at `offset` of the DLQ's `partition`.
    static func deadLetter(value: [UInt8]?, key: [UInt8]? = Array("task-1".utf8), code: DeadLetterReason.Code = .unknownProvider,
                           partition: Int32 = 0, offset: Int64 = 7, timestampMs: Int64 = 1_800_000_000_000) -> KafkaRecord {
        let letter = DeadLetterMessage(reason: DeadLetterReason(code, "explained"),
                                       source: MessageSource(topic: input, partition: 3, offset: 41), key: key, value: value,
                                       rejectedAt: Timestamp(millisecondsSinceEpoch: timestampMs))
        return KafkaRecord(topic: dlq, partition: partition, offset: offset, key: letter.recordKey, value: letter.jsonBytes(),
                           headers: [KafkaHeader(name: MessageSchema.headerKey, string: MessageSchema.deadLetter.headerValue), traceparent],
                           timestampMs: timestampMs)
    }

    static func failure(_ reason: FailureReason, createdAt: Timestamp, offset: Int64 = 5) -> KafkaRecord {
        let context = TaskContext(taskId: "task-9", createdAt: createdAt, provider: "capsolver", taskType: "ImageToTextTask",
                                  correlationId: "order-17", metadata: try? RawJSON(validating: #"{"shop":3,"clientKey":"[REDACTED]"}"#),
                                  source: MessageSource(topic: input, partition: 1, offset: 2))
        let message = FailureMessage(context: context, reason: reason, polls: 4, resolvedAt: createdAt + .seconds(30))
        return KafkaRecord(topic: failures, partition: 1, offset: offset, key: Array("task-9".utf8), value: message.jsonBytes(),
                           headers: [KafkaHeader(name: MessageSchema.headerKey, string: MessageSchema.failure.headerValue)],
                           timestampMs: (createdAt + .seconds(30)).millisecondsSinceEpoch)
    }

    func header(_ record: KafkaOutgoingRecord, _ name: String) -> String? {
        record.headers.last { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("a dead letter gives back the original key and value, its headers without the schema's, and the replay headers")
    func deadLetterCopy() throws {
        let original = Array(#"{"taskId":"task-1","provider":"ez-captcha","metadata":{"n":1}}"#.utf8)
        let candidate = ReplayCandidate(deadLetter: Self.deadLetter(value: original), inputTopic: Self.input)
        let copy = try candidate.copy.get()
        #expect(copy.topic == Self.input && copy.partition == nil)
        #expect(copy.value == original && copy.key == Array("task-1".utf8))
        #expect(candidate.reason == "unknown_provider")
        #expect(!copy.headers.contains { $0.name == MessageSchema.headerKey }, "the dead letter's schema header is not the copy's")
        #expect(copy.headers.contains(Self.traceparent), "the record's own headers are kept")
        #expect(header(copy, ReplayHeader.topic) == Self.dlq && header(copy, ReplayHeader.partition) == "0")
        #expect(header(copy, ReplayHeader.offset) == "7" && header(copy, ReplayHeader.reason) == "unknown_provider")
        #expect(ReplayPosition(copyHeaders: copy.headers) == candidate.position)
    }

    @Test("bytes that are not UTF-8 come back from base64; a null value and a null key stay null")
    func deadLetterBytes() throws {
        let bytes: [UInt8] = [0xff, 0xfe, 0x00, 0x41]
        #expect(try ReplayCandidate(deadLetter: Self.deadLetter(value: bytes, code: .notUTF8), inputTopic: Self.input).copy.get().value == bytes)
        let empty = try ReplayCandidate(deadLetter: Self.deadLetter(value: nil, key: nil, code: .nullValue), inputTopic: Self.input).copy.get()
        #expect(empty.value == nil && empty.key == nil)
    }

    @Test("a dead letter that kept only part of the value, or redacted the event's clientKey, or is no dead letter, is not replayable")
    func deadLetterRefusals() {
        let large = Array(repeating: UInt8(ascii: "a"), count: DeadLetterMessage.defaultMaxOriginalBytes + 1)
        #expect(Self.cause(ReplayCandidate(deadLetter: Self.deadLetter(value: large, code: .valueTooLarge), inputTopic: Self.input)) == .truncated)
        let keyed = Array(#"{"taskId":"t","clientKey":"secret-key-123","createdAt":"yesterday"}"#.utf8)
        let redacted = ReplayCandidate(deadLetter: Self.deadLetter(value: keyed, code: .invalidCreatedAt), inputTopic: Self.input)
        #expect(Self.cause(redacted) == .clientKeyRedacted)
        let inMetadata = Array(#"{"taskId":"t","metadata":{"clientKey":"secret-key-123"}}"#.utf8)
        #expect(Self.cause(ReplayCandidate(deadLetter: Self.deadLetter(value: inMetadata), inputTopic: Self.input)) == nil,
                "a key redacted inside metadata is never used for a call")
        var garbage = Self.deadLetter(value: [])
        garbage.value = Array("not json".utf8)
        let unreadable = ReplayCandidate(deadLetter: garbage, inputTopic: Self.input)
        #expect(Self.cause(unreadable) == .unreadable && unreadable.reason == "unreadable")
    }

    static func cause(_ candidate: ReplayCandidate) -> ReplayCandidate.Unreplayable? {
        if case .failure(let cause) = candidate.copy { return cause }
        return nil
    }

    @Test("a retryable failure gives back a task event the decoder accepts, with the failure's identity and echo fields")
    func failureCopy() throws {
        let created = Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
        let candidate = ReplayCandidate(failure: Self.failure(.transientErrors, createdAt: created), inputTopic: Self.input,
                                        resultWindow: .seconds(300), now: created + .seconds(60))
        let copy = try candidate.copy.get()
        #expect(copy.key == Array("task-9".utf8) && candidate.reason == "transient_errors")
        let event = try TaskEventDecoder().decode(copy.value).get()
        #expect(event.taskId == "task-9" && event.createdAt == created && event.provider == "capsolver")
        #expect(event.taskType == "ImageToTextTask" && event.correlationId == "order-17" && event.clientKey == nil)
        #expect(event.metadata?.description.contains(#""shop":3"#) == true)
        #expect(!copy.headers.contains { $0.name == MessageSchema.headerKey })
        #expect(header(copy, ReplayHeader.topic) == Self.failures && header(copy, ReplayHeader.offset) == "5")
    }

    @Test("final failures, and failures whose result window has closed, are not replayable")
    func failureRefusals() {
        let created = Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
        for reason in FailureReason.allCases {
            let candidate = ReplayCandidate(failure: Self.failure(reason, createdAt: created), inputTopic: Self.input,
                                            resultWindow: .seconds(300), now: created + .seconds(60))
            #expect((Self.cause(candidate) == nil) == ReplaySource.retryableFailures.contains(reason), "\(reason)")
            if !ReplaySource.retryableFailures.contains(reason) { #expect(Self.cause(candidate) == .notRetryable) }
        }
        let late = ReplayCandidate(failure: Self.failure(.accountError, createdAt: created), inputTopic: Self.input,
                                   resultWindow: .seconds(300), now: created + .seconds(300))
        #expect(Self.cause(late) == .windowClosed)
    }

    @Test("the filter chooses by reason, partition and record time (since inclusive, until exclusive)")
    func filter() {
        let t0 = Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
        let filter = ReplayFilter(reasons: ["unknown_provider"], partitions: [1], since: t0, until: t0 + .seconds(10))
        #expect(filter.admits(partition: 1, timestamp: t0) && filter.admits(partition: 1, timestamp: t0 + .seconds(9)))
        #expect(!filter.admits(partition: 1, timestamp: t0 + .seconds(10)) && !filter.admits(partition: 1, timestamp: t0 - .milliseconds(1)))
        #expect(!filter.admits(partition: 0, timestamp: t0) && !filter.admits(partition: 1, timestamp: nil))
        #expect(filter.admits(reason: "unknown_provider") && !filter.admits(reason: "invalid_json"))
        #expect(ReplayFilter().admits(partition: 9, timestamp: nil) && ReplayFilter().admits(reason: "anything"))
    }

    static func plan(force: Bool = false, filter: ReplayFilter = ReplayFilter()) -> ReplayPlan {
        ReplayPlan(source: .deadLetters, sourceTopic: dlq, inputTopic: input, filter: filter, force: force,
                   resultWindow: .seconds(300), now: Timestamp(millisecondsSinceEpoch: 1_800_000_000_000))
    }

    /// Dead letters at DLQ offsets 0..<count on partitions 0 and 1 by parity, every third `invalid_field`, the others `unknown_provider`.
    static func letters(_ count: Int) -> [KafkaRecord] {
        (0..<count).map { (i: Int) -> KafkaRecord in
            let value = Array("{\"taskId\":\"t\(i)\"}".utf8)
            let code: DeadLetterReason.Code = i % 3 == 0 ? .invalidField : .unknownProvider
            let time: Int64 = 1_800_000_000_000 + Int64(i) * 1_000
            return deadLetter(value: value, key: Array("t\(i)".utf8), code: code, partition: Int32(i % 2), offset: Int64(i), timestampMs: time)
        }
    }

    @Test("a record a copy in the input names is refused; the others go; --force sends both; copies of another topic do not count")
    func twiceRefusal() {
        var first = Self.plan()
        Self.letters(10).forEach { first.consider($0) }
        let copies = first.copies()
        #expect(copies.count == 10 && first.report.alreadyReplayed == 0)

        // The first replay's copies, as the input now holds them, the first 4 of them only (a crash midway).
        func input(_ copies: [KafkaOutgoingRecord]) -> [KafkaRecord] {
            copies.enumerated().map { KafkaRecord(topic: Self.input, partition: 0, offset: Int64($0.offset), key: $0.element.key,
                                                  value: $0.element.value, headers: $0.element.headers) }
        }
        var second = Self.plan()
        Self.letters(10).forEach { second.consider($0) }
        input(Array(copies.prefix(4))).forEach { second.noteInput($0) }
        second.noteInput(KafkaRecord(topic: Self.input, partition: 0, offset: 99, key: nil, value: nil,
                                     headers: ReplayHeader.headers(for: ReplayPosition(TopicPartition("other.dlq", 0), offset: 5), reason: "x")))
        let rest = second.copies()
        #expect(rest.map(\.key) == copies.dropFirst(4).map(\.key), "only what is not in the input yet")
        #expect(second.report.alreadyReplayed == 4 && second.report.toCopy == 6 && second.report.inputScanned == 5)

        var third = Self.plan()
        Self.letters(10).forEach { third.consider($0) }
        input(copies).forEach { third.noteInput($0) }
        #expect(third.copies().isEmpty && third.report.alreadyReplayed == 10)
        #expect(third.report.lines.contains { $0.contains("nothing to copy") && $0.contains("--force") })

        var forced = Self.plan(force: true)
        Self.letters(10).forEach { forced.consider($0) }
        input(copies).forEach { forced.noteInput($0) }
        #expect(forced.copies().count == 10 && forced.report.alreadyReplayed == 10)
    }

    @Test("the report counts what was scanned, chosen by reason and partition, and what cannot go back; a dry run says nothing was written")
    func report() {
        var plan = Self.plan(filter: ReplayFilter(reasons: ["unknown_provider"]))
        Self.letters(9).forEach { plan.consider($0) }
        plan.consider(Self.deadLetter(value: Array(#"{"taskId":"x","clientKey":"k"}"#.utf8), partition: 1, offset: 9))
        _ = plan.copies()
        var report = plan.report
        #expect(report.scanned == 10 && report.matching == 7 && report.matchingByReason == ["unknown_provider": 7])
        #expect(report.matchingByPartition == [0: 3, 1: 4] && report.unreplayable == ["client_key_redacted": 1] && report.toCopy == 6)
        report.dryRun = true
        #expect(report.lines.contains("would copy: 6 (nothing was written)"))
        #expect(!report.lines.joined().contains("\"k\""), "no value is printed")
    }
}
