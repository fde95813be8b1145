import TaskModel

/// A minimal, allocation-free JSON syntax scanner over bytes (RFC 8259).
///
/// The decoder uses it to walk the top-level object, read the few fields it
/// needs and skip (while validating) everything else. The input must already be
/// valid UTF-8; nesting is bounded by `maxDepth` so hostile input cannot exhaust
/// the stack. Never traps on any input.
struct JSONScanner {
    enum Outcome: Equatable {
        case ok
        case syntax
        case tooDeep
    }

    struct StringToken {
        var start: Int
        var end: Int
        var hasEscapes: Bool
    }

    let b: UnsafeRawBufferPointer
    let maxDepth: Int
    var i = 0

    init(_ buffer: UnsafeRawBufferPointer, maxDepth: Int) {
        self.b = buffer
        self.maxDepth = maxDepth
    }

    var atEnd: Bool { i >= b.count }

    func peek() -> UInt8? { i < b.count ? b[i] : nil }

    mutating func skipWhitespace() {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    mutating func consume(_ c: UInt8) -> Bool {
        skipWhitespace()
        guard i < b.count, b[i] == c else { return false }
        i += 1
        return true
    }

    /// Scans a string starting at the opening quote.
    mutating func scanString() -> StringToken? {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { return nil }
        i += 1
        let start = i
        var escapes = false
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                let token = StringToken(start: start, end: i, hasEscapes: escapes)
                i += 1
                return token
            }
            if c < 0x20 { return nil }
            if c == UInt8(ascii: "\\") {
                escapes = true
                i += 1
                guard i < b.count else { return nil }
                switch b[i] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 1
                case UInt8(ascii: "u"):
                    guard i + 4 < b.count else { return nil }
                    for k in 1...4 where JSONEscaping.hexValue(b[i + k]) == nil { return nil }
                    i += 5
                default:
                    return nil
                }
                continue
            }
            i += 1
        }
        return nil
    }

    /// Scans a number; reports whether it is a plain non-negative integer (digits only).
    mutating func scanNumber() -> (start: Int, end: Int, plainNonNegativeInteger: Bool)? {
        let start = i
        var plain = true
        if i < b.count, b[i] == UInt8(ascii: "-") { plain = false; i += 1 }
        guard i < b.count, Self.isDigit(b[i]) else { return nil }
        if b[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while i < b.count, Self.isDigit(b[i]) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            plain = false
            i += 1
            guard i < b.count, Self.isDigit(b[i]) else { return nil }
            while i < b.count, Self.isDigit(b[i]) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            plain = false
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count, Self.isDigit(b[i]) else { return nil }
            while i < b.count, Self.isDigit(b[i]) { i += 1 }
        }
        return (start, i, plain)
    }

    mutating func scanLiteral(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard i + count <= b.count else { return false }
        let p = word.utf8Start
        for k in 0..<count where b[i + k] != p[k] { return false }
        i += count
        return true
    }

    /// Skips one value (after optional whitespace), validating its syntax.
    /// `depth` is the nesting level of the container holding the value.
    mutating func skipValue(depth: Int) -> Outcome {
        skipWhitespace()
        guard let c = peek() else { return .syntax }
        switch c {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { return .tooDeep }
            i += 1
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
            i += 1
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
    func string(_ token: StringToken) -> String {
        let slice = UnsafeRawBufferPointer(rebasing: b[token.start..<token.end])
        return token.hasEscapes ? JSONEscaping.unescape(slice) : String(decoding: slice, as: UTF8.self)
    }

    /// Whether the scanned string's raw bytes equal `word` (no escapes involved).
    func rawEquals(_ token: StringToken, _ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard token.end - token.start == count else { return false }
        let p = word.utf8Start
        for k in 0..<count where b[token.start + k] != p[k] { return false }
        return true
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
}
