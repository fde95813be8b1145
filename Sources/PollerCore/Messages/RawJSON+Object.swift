import TaskModel

extension RawJSON {
    /// nil unless `bytes` is valid UTF-8 and exactly one JSON object (surrounding whitespace allowed).
    public init?(validatingObject bytes: [UInt8], maxDepth: Int = 64) {
        let ok = bytes.withUnsafeBytes { UTF8Validation.firstInvalid($0) == nil && JSONScanner.isObject($0, maxDepth: maxDepth) }
        guard ok else { return nil }
        self.init(unchecked: bytes)
    }

    public init?(validatingObject text: String, maxDepth: Int = 64) {
        self.init(validatingObject: Array(text.utf8), maxDepth: maxDepth)
    }
}
