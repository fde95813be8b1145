import TaskAPI
import Foundation
import Testing
@testable import Poller
@testable import PollerCore

/// Runs every message ezpoll writes through a real JSON Schema validator
/// (Python `jsonschema`, Draft 2020-12, date-time format checked), and checks the
/// validator rejects deliberately wrong documents, so this test can fail.
@Suite struct SchemaValidationTests {
    static var schemasDirectory: URL { SchemaValidator.schemasDirectory }

    struct Sample {
        var schema: MessageSchema
        var bytes: [UInt8]
        var valid: Bool
    }

    static func validSamples() throws -> [Sample] {
        var samples: [Sample] = []
        let metadatas: [String?] = [
            nil, "{}", #"{"run":7,"tags":["a","b"],"deep":{"x":{"y":[1,2.5,-3e10,null,true]}}}"#,
            #"{"big":123456789012345678901234567890,"uni":"日本語 😀 \u00e9","esc":"\"\\\n"}"#,
        ]
        let taskIds = ["3f0c2a6e-2c61-4b8e-9d2a-1b2c3d4e5f60", "123456789012345678901234567890", "ünï\"cödé\n😀", "x"]
        let solutions = [
            #"{"gRecaptchaResponse":"03AGdBq24PBCbwiDRaS_MJ7Z..."}"#,
            #"{"token":"P1_eyJ0eXAiOiJKV1Qi","userAgent":"Mozilla/5.0 (X11; Linux x86_64)"}"#,
            #"{ "token" : "a", "extra" : { "cost" : "0.002", "solveCount" : 3 } }"#,
            "{}",
        ]
        for (i, metadata) in metadatas.enumerated() {
            for (j, taskId) in taskIds.enumerated() {
                var context = sampleContext(metadata: metadata, taskId: taskId)
                if j % 2 == 1 {
                    context.taskType = nil
                    context.correlationId = nil
                    context.source.timestamp = nil
                }
                context.source.offset = Int64(i * 1_000_000_000_000 + j)
                let solution = try #require(RawJSON(validatingObject: solutions[(i + j) % solutions.count]))
                let expiresAt = j % 2 == 0 ? t(Double(i * 10 + j) + 120) : nil
                let receipt = j % 2 == 0 ? SolveReceipt(cost: "0.001500", createTime: 1472205564, endTime: 1472205570, solveCount: 0) : nil
                samples.append(Sample(schema: .solution, bytes: SolutionMessage(context: context, solution: solution, polls: i + j,
                                                                                resolvedAt: t(Double(i * 10 + j)), expiresAt: expiresAt,
                                                                                receipt: receipt).jsonBytes(), valid: true))
                for reason in FailureReason.allCases {
                    let fromAPI = reason == .taskError || reason == .accountError || reason == .taskNotFound
                    let message = FailureMessage(
                        context: context, reason: reason, errorId: fromAPI ? 1 : nil,
                        errorCode: fromAPI ? "ERROR_\(reason.rawValue.uppercased())" : nil,
                        errorDescription: fromAPI ? "Описание \"ошибки\"\n\t" : nil, polls: j, resolvedAt: t(295))
                    samples.append(Sample(schema: .failure, bytes: message.jsonBytes(), valid: true))
                }
            }
        }
        let originals: [[UInt8]?] = [
            nil, [], Array(#"{"taskId":"x","clientKey":"SECRET"}"#.utf8), [0xFF, 0xFE, 0x00, 0x01],
            Array("plain text with \u{0} nul and é".utf8), Array(repeating: 0x41, count: 70_000),
            Array("é".utf8) + Array(repeating: 0xE2, count: 1),
        ]
        for code in DeadLetterReason.Code.allCases {
            for (k, original) in originals.enumerated() {
                let message = DeadLetterMessage(
                    reason: DeadLetterReason(code, "why: \(code.rawValue) \"quoted\""),
                    source: MessageSource(topic: "captcha.tasks", partition: Int32(k), offset: Int64(k), timestamp: k % 2 == 0 ? t(1) : nil),
                    key: k % 3 == 0 ? nil : Array("key-\(k)".utf8), value: original, rejectedAt: t(2))
                samples.append(Sample(schema: .deadLetter, bytes: message.jsonBytes(maxOriginalBytes: k == 5 ? 1000 : 16_384), valid: true))
            }
        }
        // Inputs the decoder accepts validate against task-event.
        for event in [#"{"taskId":"x"}"#, #"{"taskId":18446744073709551616,"clientKey":"k","createdAt":"2026-11-29T16:34:30+01:00","metadata":{"a":1},"future":1}"#,
                      #"{"taskId":"y","taskType":null,"metadata":null}"#, #"{"taskId":1e3}"#, #"{"taskId":-0}"#, #"{"taskId":12.50e1}"#] {
            #expect((try? TaskEventDecoder().decode(Array(event.utf8)).get()) != nil)
            samples.append(Sample(schema: .taskEvent, bytes: Array(event.utf8), valid: true))
        }
        return samples
    }

    static func invalidSamples() -> [Sample] {
        func s(_ schema: MessageSchema, _ text: String) -> Sample { Sample(schema: schema, bytes: Array(text.utf8), valid: false) }
        let src = #""source":{"topic":"t","partition":0,"offset":1}"#
        let base = #""taskId":"x","polls":1,"createdAt":"2026-11-29T16:34:30.000Z","resolvedAt":"2026-11-29T16:34:31.000Z","provider":"p","#
        return [
            s(.solution, "{" + base + #""status":"ready","solution":{},"clientKey":"k","# + src + "}"), // no clientKey allowed
            s(.solution, "{" + base + #""status":"failed","solution":{},"# + src + "}"),
            s(.solution, "{" + base + #""status":"ready","solution":"tok","# + src + "}"),
            s(.solution, "{" + base.replacingOccurrences(of: "16:34:31.000Z", with: "not a date") + #""status":"ready","solution":{},"# + src + "}"),
            s(.solution, "{" + base + #""status":"ready","solution":{}}"#),
            s(.failure, "{" + base + #""status":"failed","reason":"gave_up","# + src + "}"),
            s(.failure, "{" + base.replacingOccurrences(of: #""polls":1"#, with: #""polls":-1"#) + #""status":"failed","reason":"expired","# + src + "}"),
            s(.failure, "{" + base.replacingOccurrences(of: #""taskId":"x""#, with: #""taskId":5"#) + #""status":"failed","reason":"expired","# + src + "}"),
            s(.deadLetter, #"{"reason":{"code":"nope","message":"m"},"source":{"topic":"t","partition":0,"offset":1},"key":null,"value":null,"rejectedAt":"2026-11-29T16:34:30Z"}"#),
            s(.deadLetter, #"{"reason":{"code":"invalid_json","message":"m"},"source":{"topic":"t","partition":0,"offset":1},"key":null,"value":{"encoding":"base64","data":"!!","truncated":false,"size":1},"rejectedAt":"2026-11-29T16:34:30Z"}"#),
            s(.deadLetter, #"{"reason":{"code":"invalid_json","message":"m"},"source":{"topic":"t","partition":0,"offset":1},"key":null,"rejectedAt":"2026-11-29T16:34:30Z"}"#),
            s(.taskEvent, #"{"taskId":""}"#),
            s(.taskEvent, #"{"taskId":-5}"#),
            s(.taskEvent, #"{"taskId":1.5}"#),
            s(.taskEvent, #"{"clientKey":"k"}"#),
            s(.taskEvent, #"{"taskId":"x","createdAt":"29/11/2026"}"#),
            s(.taskEvent, #"{"taskId":"x","metadata":[1]}"#),
        ]
    }

    @Test func everyOutputValidatesAndWrongDocumentsAreRejected() throws {
        let samples = try Self.validSamples() + Self.invalidSamples()
        #expect(samples.filter { !$0.valid }.count >= 10)
        try SchemaValidator.check(samples.map { (schema: $0.schema, bytes: $0.bytes, valid: $0.valid) })
    }

    @Test func schemaEnumsMatchTheSwiftTypes() throws {
        func schema(_ name: MessageSchema) throws -> [String: Any] {
            let data = try Data(contentsOf: Self.schemasDirectory.appendingPathComponent(name.fileName))
            return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
        for name in MessageSchema.allCases {
            let s = try schema(name)
            #expect(s["$id"] as? String == name.schemaID)
            #expect(s["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
            #expect(s["title"] is String)
        }
        func consts(_ s: [String: Any], _ path: [String]) -> Set<String> {
            var node: Any? = s
            for key in path { node = (node as? [String: Any])?[key] }
            let options = (node as? [String: Any])?["oneOf"] as? [[String: Any]] ?? []
            return Set(options.compactMap { $0["const"] as? String })
        }
        #expect(consts(try schema(.failure), ["properties", "reason"]) == Set(FailureReason.allCases.map(\.rawValue)))
        #expect(consts(try schema(.deadLetter), ["properties", "reason", "properties", "code"]) == Set(DeadLetterReason.Code.allCases.map(\.rawValue)))
    }
}
