/// The one redactor: replaces the value of every `clientKey` in raw text, valid
/// JSON or not, and (given the key) every occurrence of a known key's secret.
/// Dead letters, output messages, echoed metadata and the client's outcomes all
/// pass through it.
///
/// Works on bytes, so it handles truncated JSON, invalid UTF-8, JSON embedded as
/// an escaped string (`"{\"clientKey\":\"…\"}"`) and `clientKey=…` forms. The
/// name is matched case-insensitively, also as `client_key`/`client-key` and
/// with letters written as `\u00XX` escapes. A
/// string value keeps its quotes (`"[REDACTED]"`); a bare value (number,
/// literal, token) becomes the string `"[REDACTED]"`, so valid JSON stays valid;
/// a value cut off by the end of the text is redacted to the end.
public enum ClientKeyRedactor {
    public static let marker: [UInt8] = Array("[REDACTED]".utf8)

    /// `bytes` with every clientKey value replaced; the input itself if there is none.
    public static func redact(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var copied = 0
        var i = 0
        let n = bytes.count
        while i < n {
            guard let nameEnd = matchName(bytes, at: i) else { i += 1; continue }
            guard let value = locateValue(bytes, from: nameEnd) else { i = nameEnd; continue }
            if out.isEmpty { out.reserveCapacity(n + 16) }
            out.append(contentsOf: bytes[copied..<value.start])
            if value.quoted {
                out.append(contentsOf: marker)
            } else {
                out.append(UInt8(ascii: "\""))
                out.append(contentsOf: marker)
                out.append(UInt8(ascii: "\""))
            }
            copied = value.end
            i = value.end
        }
        guard copied > 0 else { return bytes }
        out.append(contentsOf: bytes[copied..<n])
        return out
    }

    /// `text` with every clientKey value replaced (`redact(_:)`) and then every
    /// remaining occurrence of `key`'s secret replaced by the key's description,
    /// which shows only its fingerprint.
    public static func redact(_ text: String, key: ClientKey) -> String {
        let named = redact(Array(text.utf8))
        let secret = Array(key.secret.utf8)
        guard !secret.isEmpty, named.count >= secret.count else { return String(decoding: named, as: UTF8.self) }
        let replacement = Array(key.description.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(named.count)
        var i = 0
        while i < named.count {
            if i + secret.count <= named.count, named[i..<(i + secret.count)].elementsEqual(secret) {
                out.append(contentsOf: replacement)
                i += secret.count
            } else {
                out.append(named[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let lowerName: [UInt8] = Array("clientkey".utf8)

    /// End index of `clientkey` / `client_key` / `client-key` (any case) starting at `i`.
    /// Letters may be spelled as JSON `\uXXXX` escapes, as a JSON parser would read them.
    private static func matchName(_ b: [UInt8], at i: Int) -> Int? {
        guard b[i] | 0x20 == UInt8(ascii: "c") || b[i] == UInt8(ascii: "\\") else { return nil }
        var j = i
        for (k, expected) in lowerName.enumerated() {
            if k == 6, case let (c, next)? = character(b, at: j), c == UInt8(ascii: "_") || c == UInt8(ascii: "-") { j = next }
            guard case let (c, next)? = character(b, at: j), c | 0x20 == expected else { return nil }
            j = next
        }
        return j
    }

    /// The ASCII character at `j`, read through a `\u00XX` escape, and the index after it.
    private static func character(_ b: [UInt8], at j: Int) -> (UInt8, Int)? {
        guard j < b.count else { return nil }
        guard b[j] == UInt8(ascii: "\\") else { return (b[j], j + 1) }
        guard j + 5 < b.count, b[j + 1] == UInt8(ascii: "u"), b[j + 2] == UInt8(ascii: "0"), b[j + 3] == UInt8(ascii: "0"),
              let high = JSONEscaping.hexValue(b[j + 4]), let low = JSONEscaping.hexValue(b[j + 5]) else { return nil }
        return (high << 4 | low, j + 6)
    }

    /// The value span after a name: closing quote(s) of the name, `:` or `=`, then the value.
    /// For a quoted value the span is its content (quotes excluded).
    private static func locateValue(_ b: [UInt8], from start: Int) -> (start: Int, end: Int, quoted: Bool)? {
        var j = start
        let n = b.count
        func skipSpace() { while j < n, b[j] == 0x20 || b[j] == 0x09 || b[j] == 0x0A || b[j] == 0x0D { j += 1 } }
        // The name's closing quote, possibly escaped (JSON inside a JSON string).
        if j < n, b[j] == UInt8(ascii: "\\"), j + 1 < n, b[j + 1] == UInt8(ascii: "\"") {
            j += 2
        } else if j < n, b[j] == UInt8(ascii: "\"") || b[j] == UInt8(ascii: "'") {
            j += 1
        }
        skipSpace()
        guard j < n, b[j] == UInt8(ascii: ":") || b[j] == UInt8(ascii: "=") else { return nil }
        j += 1
        skipSpace()
        guard j < n else { return nil }
        if b[j] == UInt8(ascii: "\"") || b[j] == UInt8(ascii: "'") {
            let quote = b[j]
            let valueStart = j + 1
            var k = valueStart
            while k < n {
                if b[k] == UInt8(ascii: "\\") { k += 2; continue }
                if b[k] == quote { break }
                k += 1
            }
            return (valueStart, min(k, n), true)
        }
        if b[j] == UInt8(ascii: "\\"), j + 1 < n, b[j + 1] == UInt8(ascii: "\"") {
            // Escaped string inside a string: ends at the next \" (or the end).
            let valueStart = j + 2
            var k = valueStart
            while k < n {
                if b[k] == UInt8(ascii: "\\"), k + 1 < n {
                    if b[k + 1] == UInt8(ascii: "\"") { break }
                    k += 2
                    continue
                }
                k += 1
            }
            return (valueStart, min(k, n), true)
        }
        // Containers are not values to blank out: their clientKeys are found on their own.
        if b[j] == UInt8(ascii: "{") || b[j] == UInt8(ascii: "[") { return nil }
        var k = j
        while k < n {
            switch b[k] {
            case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: "&"), UInt8(ascii: "\""),
                 UInt8(ascii: "\\"), 0x20, 0x09, 0x0A, 0x0D:
                return k > j ? (j, k, false) : nil
            default:
                k += 1
            }
        }
        return (j, n, false)
    }
}

extension TaskOutcome {
    /// The outcome with its provider-supplied description redacted (`ClientKeyRedactor.redact(_:key:)`),
    /// should a provider echo the key.
    public func redacting(_ key: ClientKey) -> TaskOutcome {
        guard case .failed(let failureClass, let code, let description?, let errorId) = self else { return self }
        let redacted = ClientKeyRedactor.redact(description, key: key)
        guard redacted != description else { return self }
        return .failed(failureClass, code: code, description: redacted, errorId: errorId)
    }
}
