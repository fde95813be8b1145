/// The one JSON scanner: a strict, allocation-free syntax scanner over UTF-8
/// bytes (RFC 8259: strings with escapes, numbers, literals, nesting).
///
/// It builds no tree. The tasks-topic decoder walks a record with the token
/// methods (`scanString`, `scanNumber`, `skipValue`); response decoding, the
/// simulator and validation use the document functions below (`members(ofObject:)`,
/// `validate`, `isObject`), which report where each top-level member lives so a
/// caller decodes the few fields it needs and keeps others (such as `solution`)
/// as byte-exact slices.
///
/// Nesting is bounded by `maxDepth` (the top-level value is depth 1), so hostile
/// input cannot exhaust the stack. Every index is checked before it is read: it
/// never traps on any input. UTF-8 validity is the caller's check
/// (`UTF8Validation`), the scanner looks at bytes only.
public struct JSONScanner {
    /// Depth bound of the document functions.
    public static let defaultMaxDepth = 128

    public enum Outcome: Sendable, Equatable {
        case ok
        case syntax
        case tooDeep
    }

    /// A scanned string: the byte range between its quotes.
    public struct StringToken: Sendable, Equatable {
        public var start: Int
        public var end: Int
        public var hasEscapes: Bool
    }

    /// A scanned number: its byte range, and whether it is a plain non-negative integer (digits only).
    public struct NumberToken: Sendable, Equatable {
        public var start: Int
        public var end: Int
        public var isPlainNonNegativeInteger: Bool
    }

    public let bytes: UnsafeRawBufferPointer
    public let maxDepth: Int
    /// The read position.
    public var index = 0

    public init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = JSONScanner.defaultMaxDepth) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    public var atEnd: Bool { index >= bytes.count }

    public func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    public mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// Skips whitespace, then consumes `c` if it is next.
    public mutating func consume(_ c: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == c else { return false }
        index += 1
        return true
    }

    /// Scans a string starting at the opening quote; nil (position at the fault) if it is not one.
    public mutating func scanString() -> StringToken? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        var escapes = false
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "\"") {
                let token = StringToken(start: start, end: index, hasEscapes: escapes)
                index += 1
                return token
            }
            if c < 0x20 { return nil }
            if c == UInt8(ascii: "\\") {
                escapes = true
                index += 1
                guard index < bytes.count else { return nil }
                switch bytes[index] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    guard index + 4 < bytes.count else { return nil }
                    for k in 1...4 where JSONEscaping.hexValue(bytes[index + k]) == nil { return nil }
                    index += 5
                default:
                    return nil
                }
                continue
            }
            index += 1
        }
        return nil
    }

    /// Scans a number (RFC 8259: no leading zeros, no bare dot or exponent).
    public mutating func scanNumber() -> NumberToken? {
        let start = index
        var plain = true
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { plain = false; index += 1 }
        guard index < bytes.count, Self.isDigit(bytes[index]) else { return nil }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            skipDigits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            plain = false
            index += 1
            guard index < bytes.count, Self.isDigit(bytes[index]) else { return nil }
            skipDigits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            plain = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, Self.isDigit(bytes[index]) else { return nil }
            skipDigits()
        }
        return NumberToken(start: start, end: index, isPlainNonNegativeInteger: plain)
    }

    private mutating func skipDigits() {
        while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
    }

    public mutating func scanLiteral(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let p = word.utf8Start
        for k in 0..<count where bytes[index + k] != p[k] { return false }
        index += count
        return true
    }

    /// Skips one value (after optional whitespace), validating its syntax.
    /// `depth` is the nesting level of the container holding the value (0 for the top level).
    public mutating func skipValue(depth: Int) -> Outcome {
        skipWhitespace()
        guard let c = peek() else { return .syntax }
        switch c {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { return .tooDeep }
            index += 1
            if consume(UInt8(ascii: "}")) { return .ok }
            while true {
                skipWhitespace()
                guard scanString() != nil, consume(UInt8(ascii: ":")) else { return .syntax }
                let inner = skipValue(depth: depth + 1)
                guard inner == .ok else { return inner }
                if consume(UInt8(ascii: ",")) { continue }
                return consume(UInt8(ascii: "}")) ? .ok : .syntax
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { return .tooDeep }
            index += 1
            if consume(UInt8(ascii: "]")) { return .ok }
            while true {
                let inner = skipValue(depth: depth + 1)
                guard inner == .ok else { return inner }
                if consume(UInt8(ascii: ",")) { continue }
                return consume(UInt8(ascii: "]")) ? .ok : .syntax
            }
        case UInt8(ascii: "\""):
            return scanString() != nil ? .ok : .syntax
        case UInt8(ascii: "t"):
            return scanLiteral("true") ? .ok : .syntax
        case UInt8(ascii: "f"):
            return scanLiteral("false") ? .ok : .syntax
        case UInt8(ascii: "n"):
            return scanLiteral("null") ? .ok : .syntax
        default:
            return scanNumber() != nil ? .ok : .syntax
        }
    }

    /// The decoded text of a scanned string (escapes resolved; lone surrogates become U+FFFD).
    public func string(_ token: StringToken) -> String {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[token.start..<token.end])
        return token.hasEscapes ? JSONEscaping.unescape(slice) : String(decoding: slice, as: UTF8.self)
    }

    /// Whether the scanned string's raw bytes equal `word` (no escapes involved).
    public func rawEquals(_ token: StringToken, _ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard token.end - token.start == count else { return false }
        let p = word.utf8Start
        for k in 0..<count where bytes[token.start + k] != p[k] { return false }
        return true
    }

    /// The kind of the value starting with `first`, for a value `skipValue` accepted.
    public static func kind(startingWith first: UInt8) -> JSONValueKind {
        switch first {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: return .number
        }
    }

    public static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
}

// MARK: - documents

extension JSONScanner {
    /// Scans `bytes` as one JSON document whose top level is an object and
    /// returns its members in order of appearance (duplicates kept).
    /// - Throws: `TaskAPIError(.malformedJSON)`.
    public static func members(ofObject bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws -> [JSONMember] {
        try bytes.withUnsafeBytes { buffer in
            var s = JSONScanner(buffer, maxDepth: maxDepth)
            s.skipWhitespace()
            guard s.peek() == UInt8(ascii: "{") else {
                throw TaskAPIError(.malformedJSON, "top level is not an object")
            }
            s.index += 1
            var members: [JSONMember] = []
            if !s.consume(UInt8(ascii: "}")) {
                while true {
                    s.skipWhitespace()
                    guard let key = s.scanString() else { throw s.failure(.syntax, "expected a member name") }
                    guard s.consume(UInt8(ascii: ":")) else { throw s.failure(.syntax, "expected ':'") }
                    s.skipWhitespace()
                    let valueStart = s.index
                    let outcome = s.skipValue(depth: 1)
                    guard outcome == .ok else { throw s.failure(outcome, "invalid value") }
                    members.append(JSONMember(key: s.string(key), kind: kind(startingWith: buffer[valueStart]),
                                              range: valueStart..<s.index))
                    if s.consume(UInt8(ascii: ",")) { continue }
                    guard s.consume(UInt8(ascii: "}")) else { throw s.failure(.syntax, "expected ',' or '}'") }
                    break
                }
            }
            try s.expectEnd()
            return members
        }
    }

    /// Validates that `bytes` is exactly one JSON value (any kind) and returns its kind.
    /// - Throws: `TaskAPIError(.malformedJSON)`.
    public static func validate(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws -> JSONValueKind {
        try bytes.withUnsafeBytes { buffer in
            var s = JSONScanner(buffer, maxDepth: maxDepth)
            s.skipWhitespace()
            let start = s.index
            let outcome = s.skipValue(depth: 0)
            guard outcome == .ok else { throw s.failure(outcome, "invalid value") }
            try s.expectEnd()
            return kind(startingWith: buffer[start])
        }
    }

    /// Whether `buffer` is exactly one JSON object (surrounding whitespace allowed).
    public static func isObject(_ buffer: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) -> Bool {
        var s = JSONScanner(buffer, maxDepth: maxDepth)
        s.skipWhitespace()
        guard s.peek() == UInt8(ascii: "{"), s.skipValue(depth: 0) == .ok else { return false }
        s.skipWhitespace()
        return s.atEnd
    }

    /// Decodes a string token (with its quotes) at `range` of `bytes`, as found by `members(ofObject:)`.
    /// Lone surrogates decode to U+FFFD rather than failing.
    public static func decodeString(_ bytes: [UInt8], _ range: Range<Int>) throws -> String {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count, range.count >= 2,
              bytes[range.lowerBound] == UInt8(ascii: "\""), bytes[range.upperBound - 1] == UInt8(ascii: "\"") else {
            throw TaskAPIError(.malformedJSON, "not a string token")
        }
        return bytes.withUnsafeBytes {
            JSONEscaping.unescape(UnsafeRawBufferPointer(rebasing: $0[(range.lowerBound + 1)..<(range.upperBound - 1)]))
        }
    }

    private mutating func expectEnd() throws {
        skipWhitespace()
        guard atEnd else { throw TaskAPIError(.malformedJSON, "trailing bytes at offset \(index)") }
    }

    /// The error for a failed scan, naming where it stopped.
    private func failure(_ outcome: Outcome, _ what: String) -> TaskAPIError {
        if outcome == .tooDeep { return TaskAPIError(.malformedJSON, "nesting deeper than \(maxDepth)") }
        if atEnd { return TaskAPIError(.malformedJSON, "truncated JSON: \(what) at end of input") }
        return TaskAPIError(.malformedJSON, "\(what) at offset \(index)")
    }
}

/// The kind of a JSON value.
public enum JSONValueKind: Sendable, Hashable {
    case object, array, string, number, bool, null
}

/// One member of a scanned object: its decoded name, its value's kind and the
/// byte range of the value in the scanned input.
public struct JSONMember: Sendable, Hashable {
    public let key: String
    public let kind: JSONValueKind
    public let range: Range<Int>
}
