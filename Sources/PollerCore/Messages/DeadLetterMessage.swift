import Foundation
import TaskModel

/// An input record that could not be understood (`dead-letter.schema.json`).
/// Keyed by the original record key; carries the original key and value,
/// clientKeys redacted, as UTF-8 text or base64, truncated to a limit.
public struct DeadLetterMessage: Hashable, Sendable {
    public var reason: DeadLetterReason
    public var source: MessageSource
    /// Original record key (nil for a record without one).
    public var key: [UInt8]?
    /// Original record value (nil for a null value).
    public var value: [UInt8]?
    public var rejectedAt: Timestamp
    /// The original record's trace context, carried on to the dead letter's headers.
    public var trace: TraceContext?

    public init(reason: DeadLetterReason, source: MessageSource, key: [UInt8]?, value: [UInt8]?, rejectedAt: Timestamp,
                trace: TraceContext? = nil) {
        self.reason = reason
        self.source = source
        self.key = key
        self.value = value
        self.rejectedAt = rejectedAt
        self.trace = trace
    }

    public static let schema = MessageSchema.deadLetter

    /// Default bound of the echoed key and value, each, before encoding.
    public static let defaultMaxOriginalBytes = 16 * 1024

    public func jsonBytes(maxOriginalBytes: Int = defaultMaxOriginalBytes) -> [UInt8] {
        var w = JSONWriter(capacity: 256 + min(value?.count ?? 0, maxOriginalBytes) * 4 / 3)
        w.beginObject("reason")
        w.string("code", reason.code.rawValue)
        w.string("message", reason.message)
        w.endObject()
        source.write(into: &w)
        Self.writeOriginal("key", key, limit: maxOriginalBytes, into: &w)
        Self.writeOriginal("value", value, limit: maxOriginalBytes, into: &w)
        w.timestamp("rejectedAt", rejectedAt)
        return w.finish()
    }

    /// The record key to produce the dead letter with: the original key, redacted.
    public var recordKey: [UInt8]? { key.map(ClientKeyRedactor.redact) }

    static func writeOriginal(_ name: StaticString, _ original: [UInt8]?, limit: Int, into w: inout JSONWriter) {
        guard let original else {
            w.null(name)
            return
        }
        let truncated = original.count > limit
        var kept = truncated ? Array(original[..<max(limit, 0)]) : original
        kept = ClientKeyRedactor.redact(kept)
        var asText = false
        var textEnd = kept.count
        kept.withUnsafeBytes { buffer in
            switch UTF8Validation.firstInvalid(buffer) {
            case nil: asText = true
            case .truncated(let at)? where truncated: asText = true; textEnd = at // cut inside a character
            default: asText = false
            }
        }
        w.beginObject(name)
        w.string("encoding", asText ? "utf8" : "base64")
        w.key("data")
        if asText {
            kept.withUnsafeBytes { w.appendStringBytes(UnsafeRawBufferPointer(rebasing: $0[..<textEnd])) }
        } else {
            w.appendString(Data(kept).base64EncodedString())
        }
        w.bool("truncated", truncated)
        w.integer("size", original.count)
        w.endObject()
    }
}
