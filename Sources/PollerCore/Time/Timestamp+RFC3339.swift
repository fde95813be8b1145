import TaskModel

// RFC 3339 parsing and formatting without Foundation: every record's createdAt is
// parsed on the decode path. Measured (BENCHMARKS.md, "Micro-benchmarks: hand-written
// codecs"): parsing 37-74 ns against 1.3 us for Date.ISO8601FormatStyle and 120 us for
// ISO8601DateFormatter; formatting 230-390 ns against 570 ns and 4 us.

extension Timestamp {
    /// `2026-11-29T16:34:30.123Z`: UTC with millisecond precision, always 24 bytes.
    public var rfc3339: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        appendRFC3339(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the `rfc3339` form to `bytes` (used by the JSON encoders).
    public func appendRFC3339(to bytes: inout [UInt8]) {
        let ms = millisecondsSinceEpoch
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let msOfDay = ms - days * 86_400_000
        let (year, month, day) = Self.civil(fromDays: days)
        func put(_ value: Int64, digits: Int) {
            var divisor: Int64 = 1
            for _ in 1..<digits { divisor *= 10 }
            var v = value
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v / divisor))
                v %= divisor
                divisor /= 10
            }
        }
        // Years outside 0...9999 cannot be written in RFC 3339; clamp so output stays valid.
        put(min(max(year, 0), 9999), digits: 4)
        bytes.append(UInt8(ascii: "-"))
        put(month, digits: 2)
        bytes.append(UInt8(ascii: "-"))
        put(day, digits: 2)
        bytes.append(UInt8(ascii: "T"))
        put(msOfDay / 3_600_000, digits: 2)
        bytes.append(UInt8(ascii: ":"))
        put(msOfDay / 60_000 % 60, digits: 2)
        bytes.append(UInt8(ascii: ":"))
        put(msOfDay / 1000 % 60, digits: 2)
        bytes.append(UInt8(ascii: "."))
        put(msOfDay % 1000, digits: 3)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// Parses an RFC 3339 `date-time` (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`,
    /// `T`/`Z` in either case). Fractions beyond milliseconds are truncated.
    /// Returns nil for anything else, including out-of-range fields.
    public init?(rfc3339 text: String) {
        var text = text
        let parsed: Timestamp? = text.withUTF8 { Timestamp.parseRFC3339(UnsafeRawBufferPointer($0)) }
        guard let parsed else { return nil }
        self = parsed
    }

    static func parseRFC3339(_ b: UnsafeRawBufferPointer) -> Timestamp? {
        var i = 0
        let n = b.count
        func digits(_ count: Int) -> Int64? {
            guard i + count <= n else { return nil }
            var v: Int64 = 0
            for _ in 0..<count {
                let c = b[i]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int64(c - 0x30)
                i += 1
            }
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < n, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(UInt8(ascii: "-")),
              let month = digits(2), expect(UInt8(ascii: "-")),
              let day = digits(2) else { return nil }
        guard i < n, b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") else { return nil }
        i += 1
        guard let hour = digits(2), expect(UInt8(ascii: ":")),
              let minute = digits(2), expect(UInt8(ascii: ":")),
              let second = digits(2) else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 60 else { return nil }
        var millis: Int64 = 0
        if i < n, b[i] == UInt8(ascii: ".") {
            i += 1
            var count = 0
            while i < n, b[i] >= 0x30, b[i] <= 0x39 {
                if count < 3 { millis = millis * 10 + Int64(b[i] - 0x30) }
                count += 1
                i += 1
            }
            guard count > 0 else { return nil }
            for _ in count..<max(count, 3) { millis *= 10 }
        }
        guard i < n else { return nil }
        var offsetMinutes: Int64 = 0
        switch b[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign: Int64 = b[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            guard let oh = digits(2), expect(UInt8(ascii: ":")), let om = digits(2),
                  oh <= 23, om <= 59 else { return nil }
            offsetMinutes = sign * (oh * 60 + om)
        default:
            return nil
        }
        guard i == n else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60
        return Timestamp(millisecondsSinceEpoch: seconds * 1000 + millis)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension JSONWriter {
    /// A member whose value is `value` as an RFC 3339 string.
    mutating func timestamp(_ name: StaticString, _ value: Timestamp) {
        key(name)
        bytes.append(UInt8(ascii: "\""))
        value.appendRFC3339(to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }
}
