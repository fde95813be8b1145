/// A small, strict JSON scanner over UTF-8 bytes.
///
/// It validates the full grammar (RFC 8259: strings with escapes, numbers,
/// literals, nesting) but builds no tree: it reports where each member of the
/// top-level object lives, so callers can decode the few fields they need and
/// keep others (such as `solution`) as byte-exact slices.
public struct JSONScanner {
    /// Maximum nesting depth accepted; deeper input is rejected instead of
    /// risking the stack.
    public static let maxDepth = 128

    private let bytes: [UInt8]
    private var index: Int

    private init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.index = 0
    }

    /// Scans `bytes` as one JSON document whose top level is an object and
    /// returns its members in order of appearance (duplicates kept).
    public static func members(ofObject bytes: [UInt8]) throws -> [JSONMember] {
        var scanner = JSONScanner(bytes)
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "{") else {
            throw TaskAPIError(.malformedJSON, "top level is not an object")
        }
        let members = try scanner.scanObjectMembers()
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else {
            throw TaskAPIError(.malformedJSON, "trailing bytes after the top-level object at offset \(scanner.index)")
        }
        return members
    }

    /// Validates that `bytes` is exactly one JSON value (any kind).
    public static func validate(_ bytes: [UInt8]) throws -> JSONValueKind {
        var scanner = JSONScanner(bytes)
        scanner.skipWhitespace()
        let kind = try scanner.scanValue(depth: 0)
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else {
            throw TaskAPIError(.malformedJSON, "trailing bytes at offset \(scanner.index)")
        }
        return kind
    }

    // MARK: - grammar

    private func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8) throws {
        guard peek() == byte else {
            throw unexpected("expected '\(Character(Unicode.Scalar(byte)))'")
        }
        index += 1
    }

    private func unexpected(_ what: String) -> TaskAPIError {
        if index >= bytes.count {
            return TaskAPIError(.malformedJSON, "truncated JSON: \(what) at end of input")
        }
        return TaskAPIError(.malformedJSON, "\(what) at offset \(index)")
    }

    private mutating func scanObjectMembers() throws -> [JSONMember] {
        try expect(UInt8(ascii: "{"))
        var members: [JSONMember] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return members
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw unexpected("expected a member name") }
            let keyStart = index
            try scanString()
            let key = try JSONScanner.decodeString(bytes, keyStart..<index)
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            let valueStart = index
            let kind = try scanValue(depth: 1)
            members.append(JSONMember(key: key, kind: kind, range: valueStart..<index))
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return members
            default: throw unexpected("expected ',' or '}'")
            }
        }
    }

    private mutating func scanValue(depth: Int) throws -> JSONValueKind {
        guard depth <= JSONScanner.maxDepth else {
            throw TaskAPIError(.malformedJSON, "nesting deeper than \(JSONScanner.maxDepth)")
        }
        guard let byte = peek() else { throw unexpected("expected a value") }
        switch byte {
        case UInt8(ascii: "{"):
            try scanContainer(open: UInt8(ascii: "{"), close: UInt8(ascii: "}"), isObject: true, depth: depth)
            return .object
        case UInt8(ascii: "["):
            try scanContainer(open: UInt8(ascii: "["), close: UInt8(ascii: "]"), isObject: false, depth: depth)
            return .array
        case UInt8(ascii: "\""):
            try scanString()
            return .string
        case UInt8(ascii: "t"):
            try scanLiteral("true")
            return .bool
        case UInt8(ascii: "f"):
            try scanLiteral("false")
            return .bool
        case UInt8(ascii: "n"):
            try scanLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try scanNumber()
            return .number
        default:
            throw unexpected("unexpected byte 0x\(String(byte, radix: 16))")
        }
    }

    private mutating func scanContainer(open: UInt8, close: UInt8, isObject: Bool, depth: Int) throws {
        try expect(open)
        skipWhitespace()
        if peek() == close {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            if isObject {
                guard peek() == UInt8(ascii: "\"") else { throw unexpected("expected a member name") }
                try scanString()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
            }
            _ = try scanValue(depth: depth + 1)
            skipWhitespace()
            guard let byte = peek() else { throw unexpected("expected ',' or a closing bracket") }
            if byte == UInt8(ascii: ",") {
                index += 1
            } else if byte == close {
                index += 1
                return
            } else {
                throw unexpected("expected ',' or a closing bracket")
            }
        }
    }

    private mutating func scanLiteral(_ literal: StaticString) throws {
        let count = literal.utf8CodeUnitCount
        let start = literal.utf8Start
        for offset in 0..<count {
            guard peek() == start[offset] else { throw unexpected("invalid literal") }
            index += 1
        }
    }

    private mutating func scanDigits() throws {
        guard let byte = peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else {
            throw unexpected("expected a digit")
        }
        while let byte = peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            index += 1
        }
    }

    private mutating func scanNumber() throws {
        if peek() == UInt8(ascii: "-") { index += 1 }
        if peek() == UInt8(ascii: "0") {
            index += 1
        } else {
            try scanDigits()
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            try scanDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            try scanDigits()
        }
    }

    /// Scans a string token (quotes included), validating escapes.
    private mutating func scanString() throws {
        try expect(UInt8(ascii: "\""))
        while true {
            guard let byte = peek() else { throw unexpected("unterminated string") }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return
            case UInt8(ascii: "\\"):
                guard let escaped = peek() else { throw unexpected("unterminated escape") }
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"),
                     UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                     UInt8(ascii: "r"), UInt8(ascii: "t"):
                    break
                case UInt8(ascii: "u"):
                    for _ in 0..<4 {
                        guard let hex = peek(), JSONEscaping.hexValue(hex) != nil else {
                            throw unexpected("invalid \\u escape")
                        }
                        index += 1
                    }
                default:
                    index -= 1
                    throw unexpected("invalid escape")
                }
            case 0x00..<0x20:
                index -= 1
                throw unexpected("control character in string")
            default:
                break
            }
        }
    }

    // MARK: - value decoding

    /// Decodes a string token (with its quotes) that the scanner already validated.
    /// Lone surrogates decode to U+FFFD rather than failing.
    public static func decodeString(_ bytes: [UInt8], _ range: Range<Int>) throws -> String {
        guard range.count >= 2, bytes[range.lowerBound] == UInt8(ascii: "\""),
              bytes[range.upperBound - 1] == UInt8(ascii: "\"") else {
            throw TaskAPIError(.malformedJSON, "not a string token")
        }
        return bytes.withUnsafeBytes { JSONEscaping.unescape(UnsafeRawBufferPointer(rebasing: $0[(range.lowerBound + 1)..<(range.upperBound - 1)])) }
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
