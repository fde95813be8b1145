import TaskAPI
import Foundation
import Testing
@testable import Poller
@testable import PollerCore

func jsonObject(_ bytes: [UInt8]) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
}

func sampleContext(metadata: String? = #"{"run":7}"#, taskId: String = "task-1") -> TaskContext {
    TaskContext(
        taskId: taskId, createdAt: t(0), provider: "ez-captcha", taskType: "TurnstileTaskProxyless",
        correlationId: "corr-1", metadata: metadata.map { RawJSON(unchecked: Array($0.utf8)) },
        source: MessageSource(topic: "captcha.tasks", partition: 3, offset: 42, timestamp: t(-1)))
}

@Suite struct MessageEncodingTests {
    @Test func solutionSplicesSolutionAndMetadataVerbatim() throws {
        let solution = #"{ "gRecaptchaResponse" : "03AGdBq2\u00e9", "n": 1.50E+2 }"#
        let message = SolutionMessage(
            context: sampleContext(metadata: #"{"big":123456789012345678901234567890}"#),
            solution: try #require(RawJSON(validatingObject: solution)), polls: 4, resolvedAt: t(12.5))
        let bytes = message.jsonBytes()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(solution))
        #expect(text.contains("123456789012345678901234567890"))
        let object = try #require(jsonObject(bytes))
        #expect(object["taskId"] as? String == "task-1")
        #expect(object["status"] as? String == "ready")
        #expect(object["polls"] as? Int == 4)
        #expect(object["resolvedAt"] as? String == t(12.5).rfc3339)
        #expect(object["createdAt"] as? String == t(0).rfc3339)
        let source = try #require(object["source"] as? [String: Any])
        #expect(source["partition"] as? Int == 3)
        #expect(source["offset"] as? Int == 42)
    }

    @Test func rawJSONValidation() {
        #expect(RawJSON(validatingObject: #"{"a":1}"#) != nil)
        #expect(RawJSON(validatingObject: "  {}\n") != nil)
        #expect(RawJSON(validatingObject: #"[1]"#) == nil)
        #expect(RawJSON(validatingObject: #"{"a":1"#) == nil)
        #expect(RawJSON(validatingObject: #"{"a":1} x"#) == nil)
        #expect(RawJSON(validatingObject: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) == nil)
    }

    @Test func stringsAreEscaped() throws {
        let nasty = "q\"b\\s/\u{0}\u{1}\u{1F}\n\r\t\u{8}\u{C}\u{7F}é😀\u{2028}"
        let message = FailureMessage(
            context: sampleContext(metadata: nil, taskId: nasty), reason: .taskError, errorId: 1,
            errorCode: "ERROR_CAPTCHA_UNSOLVABLE", errorDescription: nasty, polls: 2, resolvedAt: t(9))
        let object = try #require(jsonObject(message.jsonBytes()))
        #expect(object["taskId"] as? String == nasty)
        #expect(object["errorDescription"] as? String == nasty)
        #expect(object["reason"] as? String == "task_error")
        #expect(object["metadata"] == nil)
    }

    @Test func failureOmitsEmptyProviderFields() throws {
        let message = FailureMessage(context: sampleContext(), reason: .expired, errorCode: "", polls: 0, resolvedAt: t(300))
        let object = try #require(jsonObject(message.jsonBytes()))
        #expect(object["errorCode"] == nil)
        #expect(object["errorId"] == nil)
        #expect(object["polls"] as? Int == 0)
    }

    @Test func deadLetterTextBase64AndTruncation() throws {
        let source = MessageSource(topic: "captcha.tasks", partition: 0, offset: 7, timestamp: t(0))
        let text = DeadLetterMessage(reason: DeadLetterReason(.invalidJSON, "bad"), source: source,
                                     key: Array("k1".utf8), value: Array("héllo".utf8), rejectedAt: t(1))
        var object = try #require(jsonObject(text.jsonBytes()))
        var value = try #require(object["value"] as? [String: Any])
        #expect(value["encoding"] as? String == "utf8")
        #expect(value["data"] as? String == "héllo")
        #expect(value["truncated"] as? Bool == false)
        #expect(value["size"] as? Int == 6)

        let binary: [UInt8] = [0xFF, 0x00, 0x41, 0xFE, 0x80]
        let bin = DeadLetterMessage(reason: DeadLetterReason(.notUTF8, "bad"), source: source, key: nil, value: binary, rejectedAt: t(1))
        object = try #require(jsonObject(bin.jsonBytes()))
        value = try #require(object["value"] as? [String: Any])
        #expect(value["encoding"] as? String == "base64")
        #expect(value["data"] as? String == Data(binary).base64EncodedString())
        #expect(object["key"] is NSNull)

        // Cut inside "é": text up to the cut character, flagged truncated.
        let cut = DeadLetterMessage(reason: DeadLetterReason(.valueTooLarge, "big"), source: source, key: nil,
                                    value: Array("abé".utf8), rejectedAt: t(1))
        object = try #require(jsonObject(cut.jsonBytes(maxOriginalBytes: 3)))
        value = try #require(object["value"] as? [String: Any])
        #expect(value["encoding"] as? String == "utf8")
        #expect(value["data"] as? String == "ab")
        #expect(value["truncated"] as? Bool == true)
        #expect(value["size"] as? Int == 4)

        let null = DeadLetterMessage(reason: DeadLetterReason(.nullValue, "none"), source: source, key: nil, value: nil, rejectedAt: t(1))
        object = try #require(jsonObject(null.jsonBytes()))
        #expect(object["value"] is NSNull)
    }

    @Test("binary originals of every length residue come back from the dead letter's base64")
    func deadLetterBase64RoundTrips() throws {
        let source = MessageSource(topic: "captcha.tasks", partition: 0, offset: 7, timestamp: t(0))
        var random = SeededRandom(seed: 11)
        for length in 1..<64 {
            let input = [0xFF] + (1..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let message = DeadLetterMessage(reason: DeadLetterReason(.notUTF8, "bad"), source: source, key: nil, value: input, rejectedAt: t(1))
            let value = try #require(jsonObject(message.jsonBytes())?["value"] as? [String: Any])
            #expect(value["encoding"] as? String == "base64")
            let data = try #require(value["data"] as? String)
            #expect(data.count == (length + 2) / 3 * 4)
            #expect(Data(base64Encoded: data).map { Array($0) } == input)
        }
    }

    @Test func schemaHeaderNames() {
        #expect(MessageSchema.headerKey == "ezpoll-schema")
        #expect(SolutionMessage.schema.headerValue == "ezpoll.solution.v1")
        #expect(FailureMessage.schema.headerValue == "ezpoll.failure.v1")
        #expect(DeadLetterMessage.schema.headerValue == "ezpoll.dead-letter.v1")
        #expect(MessageSchema.taskEvent.fileName == "task-event.schema.json")
    }
}

@Suite struct ClientKeyRedactorTests {
    func redact(_ text: String) -> String {
        String(decoding: ClientKeyRedactor.redact(Array(text.utf8)), as: UTF8.self)
    }

    @Test func formsOfClientKey() {
        #expect(redact(#"{"taskId":"x","clientKey":"abc"}"#) == #"{"taskId":"x","clientKey":"[REDACTED]"}"#)
        #expect(redact(#"{"clientKey" : "a\"b", "n":1}"#) == #"{"clientKey" : "[REDACTED]", "n":1}"#)
        #expect(redact(#"{"ClientKey":12345}"#) == #"{"ClientKey":"[REDACTED]"}"#)
        #expect(redact(#"{"client_key":null}"#) == #"{"client_key":"[REDACTED]"}"#)
        #expect(redact(#"{"clientKey":"abc"#) == #"{"clientKey":"[REDACTED]"#) // truncated
        #expect(redact(#"{"m":"{\"clientKey\":\"abc\"}"}"#) == #"{"m":"{\"clientKey\":\"[REDACTED]\"}"}"#)
        #expect(redact("clientKey=abc&taskId=1") == #"clientKey="[REDACTED]"&taskId=1"#)
        #expect(redact(#"{"clientKeyId":"keep","clientKey":{"v":"x"}}"#) == #"{"clientKeyId":"keep","clientKey":{"v":"x"}}"#)
        #expect(redact(#"{"client\u004bey":"abc","\u0063lientkey":"def"}"#) == #"{"client\u004bey":"[REDACTED]","\u0063lientkey":"[REDACTED]"}"#)
        #expect(redact(#"{"client\u004"#) == #"{"client\u004"#)
        #expect(redact("no key here") == "no key here")
        #expect(redact("clientKey") == "clientKey")
    }

    @Test func everyTruncationOfARecordHidesTheKey() {
        let record = #"{"taskId":"t-1","clientKey":"sk_live_zzqq9","metadata":{"clientKey":"sk_live_zzqq9"}}"#
        let bytes = Array(record.utf8)
        for cut in 0...bytes.count {
            let dl = DeadLetterMessage(
                reason: DeadLetterReason(.invalidJSON, "x"), source: MessageSource(topic: "t", partition: 0, offset: 0),
                key: Array(bytes[..<cut]), value: Array(bytes[..<cut]), rejectedAt: t(0))
            for limit in [cut, 20, 35, 1000] {
                let out = String(decoding: dl.jsonBytes(maxOriginalBytes: limit), as: UTF8.self)
                #expect(!out.contains("zzqq") && !out.contains("sk_l"), "cut \(cut) limit \(limit): \(out)")
            }
            let key = String(decoding: dl.recordKey ?? [], as: UTF8.self)
            #expect(!key.contains("zzqq") && !key.contains("sk_l"))
        }
    }

    @Test func failureDescriptionIsRedacted() {
        let message = FailureMessage(context: sampleContext(), reason: .accountError, errorCode: "ERROR_KEY_DOES_NOT_EXIST",
                                     errorDescription: #"bad clientKey: "sk_live_zzqq9""#, polls: 1, resolvedAt: t(5))
        #expect(!String(decoding: message.jsonBytes(), as: UTF8.self).contains("zzqq"))
    }

    @Test func clientKeyDescriptionIsRedacted() {
        let key = ClientKey("sk_live_zzqq9")
        #expect(!"\(key)".contains("zzqq"))
        #expect(!String(reflecting: key).contains("zzqq"))
        #expect(key.fingerprint.count == 8)
    }
}
