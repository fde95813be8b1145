// Micro-benchmarks of the hand-written codecs against what Foundation and the
// standard library offer (BENCHMARKS.md, "Micro-benchmarks: hand-written codecs").
// Not part of the build or the tests:
//   EZPOLL_BENCHMARKS=1 swift run -c release JSONBench
// Prints ns per operation, best of `rounds` rounds; prints no verdict.
import Foundation
import PollerCore
import TaskModel

/// Keeps results alive so the optimiser cannot drop the work.
nonisolated(unsafe) var sink = 0

let rounds = 7

/// Best-of-`rounds` nanoseconds per call of `body` over `inputs`.
@MainActor func measure<T>(_ name: String, _ inputs: [T], minimumCalls: Int = 200_000, _ body: (T) -> Int) {
    let passes = max(1, minimumCalls / inputs.count)
    var best = Double.infinity
    for _ in 0..<rounds {
        let clock = ContinuousClock()
        let started = clock.now
        for _ in 0..<passes {
            for input in inputs { sink &+= body(input) }
        }
        let elapsed = clock.now - started
        let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        best = min(best, ns / Double(passes * inputs.count))
    }
    print(name.padding(toLength: 58, withPad: " ", startingAt: 0), String(format: "%10.1f ns/op", best))
}

// MARK: - RFC 3339

var timestamps: [String] = []
var generator = SplitMix64(seed: 3339)
for k in 0..<1_000 {
    let year = 2000 + Int(generator.next() % 40), month = 1 + Int(generator.next() % 12), day = 1 + Int(generator.next() % 28)
    let hour = Int(generator.next() % 24), minute = Int(generator.next() % 60), second = Int(generator.next() % 60)
    var text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hour, minute, second)
    switch k % 3 {
    case 0: text += "Z"
    case 1: text += String(format: ".%03dZ", Int(generator.next() % 1000))
    default: text += String(format: ".%03d+%02d:30", Int(generator.next() % 1000), Int(generator.next() % 12))
    }
    timestamps.append(text)
}

// Both must accept every input, or the comparison is not fair.
let formatter = ISO8601DateFormatter()
formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
let plainFormatter = ISO8601DateFormatter()
plainFormatter.formatOptions = [.withInternetDateTime]
@MainActor func foundationFormatter(_ text: String) -> Date? { formatter.date(from: text) ?? plainFormatter.date(from: text) }
let fractionalStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
let plainStyle = Date.ISO8601FormatStyle()
@MainActor func foundationStyle(_ text: String) -> Date? {
    (try? fractionalStyle.parse(text)) ?? (try? plainStyle.parse(text))
}
for text in timestamps {
    let hand = Timestamp(rfc3339: text)?.millisecondsSinceEpoch
    let viaFormatter = foundationFormatter(text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
    let viaStyle = foundationStyle(text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
    guard hand != nil, hand == viaFormatter, hand == viaStyle else {
        fatalError("parsers disagree on \(text): \(String(describing: hand)) \(String(describing: viaFormatter)) \(String(describing: viaStyle))")
    }
}
print("RFC 3339 parse (1,000 mixed date-times: Z, .mmmZ, .mmm+hh:30)")
measure("  hand-written Timestamp(rfc3339:)", timestamps) { Int(Timestamp(rfc3339: $0)!.millisecondsSinceEpoch & 1) }
measure("  Foundation ISO8601DateFormatter", timestamps, minimumCalls: 20_000) { Int(foundationFormatter($0)!.timeIntervalSince1970) & 1 }
measure("  Foundation Date.ISO8601FormatStyle", timestamps, minimumCalls: 20_000) { Int(foundationStyle($0)!.timeIntervalSince1970) & 1 }

let instants = timestamps.map { Timestamp(rfc3339: $0)! }
let writeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
print("RFC 3339 format (UTC, milliseconds)")
measure("  hand-written Timestamp.rfc3339", instants) { $0.rfc3339.utf8.count }
measure("  Foundation ISO8601DateFormatter.string(from:)", instants, minimumCalls: 20_000) {
    formatter.string(from: Date(timeIntervalSince1970: Double($0.millisecondsSinceEpoch) / 1000)).utf8.count
}
measure("  Foundation Date.ISO8601FormatStyle.format", instants, minimumCalls: 20_000) {
    writeStyle.format(Date(timeIntervalSince1970: Double($0.millisecondsSinceEpoch) / 1000)).utf8.count
}

// MARK: - UTF-8 validation

let event = Array(#"{"taskId":"8f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b","clientKey":"k-1234567890abcdef","createdAt":"2026-11-29T16:34:30.123Z","taskType":"ReCaptchaV2TaskProxyless","provider":"ez-captcha","correlationId":"c-42","metadata":{"shop":"north","attempt":1}}"#.utf8)
let mixed = Array(String(repeating: #"{"note":"café ✓ 日本語 😀","n":12}"#, count: 60).utf8)
let large = Array(String(repeating: "a", count: 64 * 1024 - 9).utf8) + Array("é✓😀".utf8)
for (name, bytes) in [("event (\(event.count) B ASCII)", event), ("mixed (\(mixed.count) B non-ASCII)", mixed), ("large (\(large.count) B mostly ASCII)", large)] {
    let inputs = Array(repeating: bytes, count: 16)
    guard inputs[0].withUnsafeBytes({ UTF8Validation.firstInvalid($0) }) == nil, String(validating: bytes, as: UTF8.self) != nil else {
        fatalError("validators disagree on \(name)")
    }
    let calls = bytes.count > 10_000 ? 20_000 : 400_000
    print("UTF-8 validation, \(name)")
    measure("  hand-written UTF8Validation.firstInvalid", inputs, minimumCalls: calls) { input in
        input.withUnsafeBytes { UTF8Validation.firstInvalid($0) == nil ? 1 : 0 }
    }
    measure("  stdlib String(validating:as: UTF8.self)", inputs, minimumCalls: calls) { input in
        String(validating: input, as: UTF8.self)?.utf8.count ?? 0
    }
    measure("  stdlib String(decoding:as:) (repairs, not a check)", inputs, minimumCalls: calls) { input in
        String(decoding: input, as: UTF8.self).utf8.count
    }
}

// MARK: - the whole decode, for scale

let decoder = TaskEventDecoder()
print("TaskEventDecoder.decode, event (\(event.count) B)")
measure("  decode (UTF-8 check + scan + fields)", Array(repeating: event, count: 16)) { input in
    if case .success(let e) = decoder.decode(input) { return e.taskId.utf8.count }
    return 0
}
print("sink \(sink & 1)")
