/// A JSON value kept as its original bytes: a byte-exact slice of the
/// provider's response. Never re-encoded, so numbers, key order, escapes and
/// unicode survive unchanged.
public struct RawJSON: Sendable, Hashable, CustomStringConvertible {
    /// The UTF-8 bytes of the value, exactly as received.
    public let bytes: [UInt8]

    /// Wraps bytes already known to be one JSON value (no validation).
    public init(unchecked bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Wraps `bytes` after checking they are exactly one JSON value.
    public init(validating bytes: [UInt8]) throws {
        _ = try JSONScanner.validate(bytes)
        self.bytes = bytes
    }

    /// Wraps the UTF-8 of `text` after checking it is exactly one JSON value.
    public init(validating text: String) throws {
        try self.init(validating: Array(text.utf8))
    }

    /// nil unless `bytes` is valid UTF-8 and exactly one JSON object (surrounding whitespace allowed).
    public init?(validatingObject bytes: [UInt8], maxDepth: Int = JSONScanner.defaultMaxDepth) {
        let ok = bytes.withUnsafeBytes { UTF8Validation.firstInvalid($0) == nil && JSONScanner.isObject($0, maxDepth: maxDepth) }
        guard ok else { return nil }
        self.init(unchecked: bytes)
    }

    public init?(validatingObject text: String, maxDepth: Int = JSONScanner.defaultMaxDepth) {
        self.init(validatingObject: Array(text.utf8), maxDepth: maxDepth)
    }

    /// The value as text (the bytes decoded as UTF-8).
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public var description: String { text }
}
