/// Strict UTF-8 validation (no overlongs, no surrogates, nothing above U+10FFFF)
/// that says where input stops being UTF-8 (the dead letter names the byte, and a
/// value cut inside a character is still shown as text up to the cut). Faster than
/// `String(validating:)` on the ASCII-heavy records (BENCHMARKS.md, "Micro-benchmarks").
public enum UTF8Validation {
    public enum Failure: Equatable, Sendable {
        /// A bad byte at this index.
        case invalid(at: Int)
        /// A sequence that starts at this index and is cut off by the end of the buffer.
        case truncated(at: Int)
    }

    public static func firstInvalid(_ b: UnsafeRawBufferPointer) -> Failure? {
        let n = b.count
        var i = 0
        while i < n {
            // ASCII fast path, eight bytes at a time when aligned enough.
            while i + 8 <= n, b.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
            }
            guard i < n else { return nil }
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            let length: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return .invalid(at: i)
            }
            for k in 1..<length {
                guard i + k < n else { return .truncated(at: i) }
                let cc = b[i + k]
                let (lo, hi) = k == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
                guard cc >= lo, cc <= hi else { return .invalid(at: i) }
            }
            i += length
        }
        return nil
    }

    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { firstInvalid($0) == nil }
    }
}
