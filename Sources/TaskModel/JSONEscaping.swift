/// JSON string escaping into bytes (RFC 8259: quote, backslash and every control
/// character), the one escaper every module uses: request bodies here, simulator
/// answers, and Poller's output messages.
public enum JSONEscaping {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `text` as a quoted, escaped JSON string.
    public static func appendString(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendString(utf8: UnsafeRawBufferPointer($0), to: &out) }
    }

    /// Appends valid UTF-8 bytes as a quoted, escaped JSON string. Unescaped runs are
    /// copied whole.
    public static func appendString(utf8 b: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var runStart = 0
        for k in 0..<b.count {
            let c = b[k]
            guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[runStart..<k]))
            runStart = k + 1
            switch c {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            default: out.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(c >> 4)], hex[Int(c & 15)]])
            }
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[runStart..<b.count]))
        out.append(UInt8(ascii: "\""))
    }

    /// `text` as a quoted, escaped JSON string.
    public static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        appendString(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The value of a hex digit, or nil.
    public static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// The text of a JSON string's inner bytes (between the quotes), escapes resolved.
    /// Meant for tokens a scanner validated; on anything else it stays memory-safe and
    /// keeps what it cannot read. Lone surrogates become U+FFFD.
    public static func unescape(_ b: UnsafeRawBufferPointer) -> String {
        guard b.contains(UInt8(ascii: "\\")) else { return String(decoding: b, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= b.count else { return nil }
            var v: UInt32 = 0
            for j in 0..<4 {
                guard let h = hexValue(b[at + j]) else { return nil }
                v = v << 4 | UInt32(h)
            }
            return v
        }
        var k = 0
        while k < b.count {
            let c = b[k]
            guard c == UInt8(ascii: "\\"), k + 1 < b.count else { out.append(c); k += 1; continue }
            let e = b[k + 1]
            k += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hex4(k) else { out.append(contentsOf: [0xEF, 0xBF, 0xBD]); continue }
                k += 4
                if (0xD800...0xDBFF).contains(scalar), k + 6 <= b.count,
                   b[k] == UInt8(ascii: "\\"), b[k + 1] == UInt8(ascii: "u"),
                   let low = hex4(k + 2), (0xDC00...0xDFFF).contains(low) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    k += 6
                }
                out.append(contentsOf: UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}")!)
            default: out.append(e) // \" \\ \/
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
