/// JSON text kept as bytes and spliced into output verbatim: the provider's
/// `solution` and the event's `metadata` are never decoded and re-encoded.
public struct RawJSON: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// Trusts the caller that `bytes` is one valid JSON value.
    public init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    /// nil unless `bytes` is exactly one JSON object (surrounding whitespace allowed).
    public init?(validatingObject bytes: [UInt8], maxDepth: Int = 64) {
        let ok: Bool = bytes.withUnsafeBytes { buffer in
            guard UTF8Validation.firstInvalid(buffer) == nil else { return false }
            var scanner = JSONScanner(buffer, maxDepth: maxDepth)
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: "{") else { return false }
            guard case .ok = scanner.skipValue(depth: 0) else { return false }
            scanner.skipWhitespace()
            return scanner.atEnd
        }
        guard ok else { return nil }
        self.bytes = bytes
    }

    public init?(validatingObject text: String, maxDepth: Int = 64) {
        self.init(validatingObject: Array(text.utf8), maxDepth: maxDepth)
    }

    public var description: String { String(decoding: bytes, as: UTF8.self) }
}
