import TaskAPI
import Foundation
import Testing
@testable import Poller
@testable import PollerCore

@Suite struct TaskEventDecoderTests {
    let decoder = TaskEventDecoder()

    func decode(_ text: String) -> Result<TaskEvent, DeadLetterReason> { decoder.decode(Array(text.utf8)) }

    func code(_ text: String) -> DeadLetterReason.Code? {
        if case .failure(let reason) = decode(text) { return reason.code }
        return nil
    }

    func event(_ text: String) -> TaskEvent? { try? decode(text).get() }

    @Test func fullEvent() throws {
        let e = try decode("""
            {"taskId":"8f1c-uuid","clientKey":"k-123","createdAt":"2026-11-29T16:34:30.123Z","taskType":"ReCaptchaV2TaskProxyless",
             "provider":"ez-captcha","correlationId":"c-1","metadata":{"a":[1,2,{"b":null}],"u":"é\\u00e9"},"extra":{"ignored":true}}
            """).get()
        #expect(e.taskId == "8f1c-uuid")
        #expect(e.clientKey == ClientKey("k-123"))
        #expect(e.createdAt == Timestamp(rfc3339: "2026-11-29T16:34:30.123Z"))
        #expect(e.taskType == "ReCaptchaV2TaskProxyless")
        #expect(e.provider == "ez-captcha")
        #expect(e.correlationId == "c-1")
        #expect(e.metadata?.description == #"{"a":[1,2,{"b":null}],"u":"é\u00e9"}"#)
    }

    @Test func minimalEventAndNullsMeanAbsent() {
        let e = event(#"  {"taskId":"x","clientKey":null,"createdAt":null,"metadata":null,"taskType":null}  "#)
        #expect(e == TaskEvent(taskId: "x"))
    }

    @Test func integerTaskIdsAreKeptExactly() {
        #expect(event(#"{"taskId":0}"#)?.taskId == "0")
        #expect(event(#"{"taskId":2147483648}"#)?.taskId == "2147483648")
        #expect(event(#"{"taskId":9007199254740993}"#)?.taskId == "9007199254740993") // 2^53 + 1
        #expect(event(#"{"taskId":123456789012345678901234567890}"#)?.taskId == "123456789012345678901234567890")
        // Integers in value, as JSON Schema sees them, normalised from the text.
        #expect(event(#"{"taskId":1e3}"#)?.taskId == "1000")
        #expect(event(#"{"taskId":1E+21}"#)?.taskId == "1000000000000000000000")
        #expect(event(#"{"taskId":12.50e1}"#)?.taskId == "125")
        #expect(event(#"{"taskId":2.0}"#)?.taskId == "2")
        #expect(event(#"{"taskId":-0}"#)?.taskId == "0")
        #expect(event(#"{"taskId":-0.0e5}"#)?.taskId == "0")
        #expect(event(#"{"taskId":1500e-2}"#)?.taskId == "15")
        #expect(event(#"{"taskId":9007199254740993.000}"#)?.taskId == "9007199254740993")
    }

    @Test func escapedStringsAreDecoded() {
        #expect(event(#"{"taskId":"a\"b\\c\u00e9\ud83d\ude00\n"}"#)?.taskId == "a\"b\\cé😀\n")
        #expect(event(#"{"task\u0049d":"escaped-name"}"#)?.taskId == "escaped-name")
    }

    @Test func everyRejectionHasItsCode() {
        #expect(decoder.decode(nil).failureCode == .nullValue)
        #expect(TaskEventDecoder(maxValueBytes: 10).decode(Array(#"{"taskId":"0123456789"}"#.utf8)).failureCode == .valueTooLarge)
        #expect(decoder.decode([0x7B, 0x22, 0xFF, 0x22, 0x7D]).failureCode == .notUTF8)
        #expect(decoder.decode([0xC3]).failureCode == .notUTF8)
        #expect(decoder.decode([0xED, 0xA0, 0x80]).failureCode == .notUTF8) // encoded surrogate
        #expect(code("") == .invalidJSON)
        #expect(code("   ") == .invalidJSON)
        #expect(code("not json") == .invalidJSON)
        #expect(code(#"{"taskId":"x"} trailing"#) == .invalidJSON)
        #expect(code(#"{"taskId":"x",}"#) == .invalidJSON)
        #expect(code(#"{"taskId":"x""#) == .invalidJSON)
        #expect(code(#"{"taskId":01}"#) == .invalidJSON)
        #expect(code("{\"taskId\":\"a\u{1}b\"}") == .invalidJSON)
        #expect(code(#"{"taskId":true,"x":}"#) == .invalidJSON) // syntax wins over field errors
        #expect(code(#"[{"taskId":"x"}]"#) == .notAnObject)
        #expect(code(#""x""#) == .notAnObject)
        #expect(code("42") == .notAnObject)
        #expect(code("null") == .notAnObject)
        #expect(code(String(repeating: "[", count: 20_000)) == .nestingTooDeep)
        #expect(code(#"{"taskId":"x","m":"# + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}") == .nestingTooDeep)
        #expect(code(#"{"taskId":"x","taskId":"y"}"#) == .duplicateField)
        #expect(code(#"{}"#) == .missingTaskId)
        #expect(code(#"{"taskID":"x"}"#) == .missingTaskId)
        #expect(code(#"{"taskId":""}"#) == .emptyTaskId)
        #expect(code(#"{"taskId":" \t"}"#) == .emptyTaskId)
        #expect(code(#"{"taskId":-1}"#) == .invalidTaskId)
        #expect(code(#"{"taskId":1.5}"#) == .invalidTaskId)
        #expect(code(#"{"taskId":1e-3}"#) == .invalidTaskId)
        #expect(code(#"{"taskId":-2e3}"#) == .invalidTaskId)
        #expect(code(#"{"taskId":1e999999999}"#) == .invalidTaskId)
        #expect(code(#"{"taskId":15e-1}"#) == .invalidTaskId)
        #expect(code(#"{"taskId":null}"#) == .invalidTaskId)
        #expect(code(#"{"taskId":["x"]}"#) == .invalidTaskId)
        #expect(code(#"{"taskId":{"id":"x"}}"#) == .invalidTaskId)
        #expect(code(#"{"taskId":""# + String(repeating: "x", count: 2000) + #""}"#) == .invalidTaskId)
        #expect(code(#"{"taskId":"x","createdAt":"yesterday"}"#) == .invalidCreatedAt)
        #expect(code(#"{"taskId":"x","createdAt":1764433000}"#) == .invalidCreatedAt)
        #expect(code(#"{"taskId":"x","metadata":"str"}"#) == .invalidMetadata)
        #expect(code(#"{"taskId":"x","metadata":[1]}"#) == .invalidMetadata)
        #expect(TaskEventDecoder(maxMetadataBytes: 10).decode(Array(#"{"taskId":"x","metadata":{"k":"0123456789"}}"#.utf8)).failureCode == .metadataTooLarge)
        #expect(code(#"{"taskId":"x","clientKey":42}"#) == .invalidField)
        #expect(code(#"{"taskId":"x","clientKey":""}"#) == .invalidField)
        #expect(code(#"{"taskId":"x","correlationId":{}}"#) == .invalidField)
        #expect(code(#"{"taskId":"x","provider":false}"#) == .invalidField)
    }

    @Test func messagesAreReadableAndNeverEchoTheKey() {
        guard case .failure(let reason) = decode(#"{"taskId":5.5,"clientKey":"SECRET-KEY"}"#) else {
            Issue.record("expected a failure")
            return
        }
        #expect(reason.message.contains("taskId"))
        #expect(!reason.description.contains("SECRET"))
    }

    @Test func clientKeysInsideMetadataAreRedacted() {
        let e = event(#"{"taskId":"x","metadata":{"user":"u","nested":{"clientKey":"SECRET-1"},"ClientKey":123}}"#)
        let text = e?.metadata?.description ?? ""
        #expect(!text.contains("SECRET"))
        #expect(!text.contains("123"))
        #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8))) != nil)
    }

    @Test func neverCrashesOnRandomOrMutatedInput() {
        var random = SeededRandom(seed: 2026)
        let seeds: [[UInt8]] = [
            #"{"taskId":"abc","clientKey":"SECRET","createdAt":"2026-11-29T16:34:30Z","metadata":{"a":[1,{"b":"c"}]}}"#,
            #"{"taskId":12345678901234567890,"correlationId":"c\u00e9\n"}"#,
            #"[{"a":1},2,"x",true,null,-0.5e+3]"#,
        ].map { Array($0.utf8) }
        let alphabet = Array(#"{}[]:,"\ -+.eE0123456789tfnulrsaxyz"#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xA9, 0xED, 0xF0, 0xFF]
        var accepted = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 4 == 0 {
                bytes = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            } else {
                bytes = seeds[round % seeds.count]
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let at = Int.random(in: 0...bytes.count, using: &random)
                    switch Int.random(in: 0..<4, using: &random) {
                    case 0 where at < bytes.count: bytes.remove(at: at)
                    case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: at)
                    case 2 where at < bytes.count: bytes[at] = alphabet.randomElement(using: &random)!
                    default: bytes = Array(bytes[..<at])
                    }
                }
            }
            switch decoder.decode(bytes) {
            case .success(let e):
                accepted += 1
                #expect(!e.taskId.isEmpty)
                // Anything accepted must be JSON Foundation agrees is an object (Foundation
                // alone refuses numbers beyond Double's range, which RFC 8259 allows).
                let text = String(decoding: bytes, as: UTF8.self)
                let beyondDouble = text.contains(try! Regex("[eE][+]?[0-9]{3,}"))
                #expect((try? JSONSerialization.jsonObject(with: Data(bytes))) is [String: Any] || beyondDouble, "\(text)")
            case .failure(let reason):
                #expect(!reason.message.isEmpty)
            }
            // The dead-letter path must hold up on the same bytes.
            let dl = DeadLetterMessage(
                reason: DeadLetterReason(.invalidJSON, "x"), source: MessageSource(topic: "t", partition: 0, offset: Int64(round)),
                key: bytes, value: bytes, rejectedAt: t(0))
            #expect((try? JSONSerialization.jsonObject(with: Data(dl.jsonBytes(maxOriginalBytes: 40)))) != nil)
        }
        #expect(accepted > 100)
    }
}

extension Result where Failure == DeadLetterReason {
    var failureCode: DeadLetterReason.Code? {
        if case .failure(let reason) = self { return reason.code }
        return nil
    }
}
