import TaskModel

extension RawJSON {
    /// nil unless `bytes` is valid UTF-8 and exactly one JSON object (surrounding whitespace allowed).
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
        self.init(unchecked: bytes)
    }

    public init?(validatingObject text: String, maxDepth: Int = 64) {
        self.init(validatingObject: Array(text.utf8), maxDepth: maxDepth)
    }
}
