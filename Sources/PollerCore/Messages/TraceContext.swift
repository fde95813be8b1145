/// A W3C Trace Context (`traceparent` and `tracestate`) that arrived with an input
/// record and goes on with its output, so a producer that traces its tasks can follow one
/// through ezpoll. ezpoll forwards it as it came: it creates no spans of its own.
///
/// A class, so a task without one costs a nil pointer and a task with one shares it.
public final class TraceContext: Sendable, Hashable, CustomStringConvertible {
    public static let traceparentHeader = "traceparent"
    public static let tracestateHeader = "tracestate"
    /// Longest `tracestate` kept (the W3C limit is 32 members; 512 bytes is the size
    /// propagators must accept).
    public static let maxTracestateBytes = 512

    public let traceparent: String
    public let tracestate: String?

    /// Nil unless `traceparent` is well formed (version 00 or a later one of at least the
    /// same fields, a non-zero trace id and parent id, lowercase hex); a malformed or
    /// oversized `tracestate` is dropped, the `traceparent` kept.
    public init?(traceparent: [UInt8]?, tracestate: [UInt8]?) {
        guard let traceparent, Self.isValidTraceparent(traceparent) else { return nil }
        self.traceparent = String(decoding: traceparent, as: UTF8.self)
        self.tracestate = tracestate.flatMap { bytes in
            guard !bytes.isEmpty, bytes.count <= Self.maxTracestateBytes,
                  bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; a later version may add
    /// fields after a dash, version ff is invalid.
    static func isValidTraceparent(_ bytes: [UInt8]) -> Bool {
        guard bytes.count == 55 || (bytes.count > 55 && bytes[55] == UInt8(ascii: "-")) else { return false }
        func hex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        func zero(_ range: Range<Int>) -> Bool { bytes[range].allSatisfy { $0 == 0x30 } }
        let dash = UInt8(ascii: "-")
        guard hex(0..<2), bytes[2] == dash, hex(3..<35), bytes[35] == dash, hex(36..<52), bytes[52] == dash, hex(53..<55) else {
            return false
        }
        let version = bytes[0..<2]
        if version.elementsEqual("ff".utf8) { return false }
        if version.elementsEqual("00".utf8), bytes.count != 55 { return false }
        return !zero(3..<35) && !zero(36..<52)
    }

    /// The headers to send on: `traceparent`, and `tracestate` when there is one.
    public var headers: [(name: String, value: String)] {
        [(Self.traceparentHeader, traceparent)] + (tracestate.map { [(Self.tracestateHeader, $0)] } ?? [])
    }

    public var description: String { traceparent }

    public static func == (lhs: TraceContext, rhs: TraceContext) -> Bool {
        lhs.traceparent == rhs.traceparent && lhs.tracestate == rhs.tracestate
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(traceparent)
        hasher.combine(tracestate)
    }
}
