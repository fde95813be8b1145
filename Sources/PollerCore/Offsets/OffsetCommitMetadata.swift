import Foundation

/// Finished offsets above a committed offset, carried in the offset commit's metadata.
///
/// The committed offset of a partition is its watermark: the lowest offset whose
/// task is not finished. Tasks finish out of order, so offsets above it may be
/// finished already; without more information the next owner of the partition
/// would run them again. Following Confluent Parallel Consumer, the commit's
/// `metadata` string carries the set of those finished offsets, and the next
/// owner skips them.
///
/// The decoder is deliberately strict: anything it accepts marks offsets as done,
/// and a wrong "done" loses a task, while a rejected string only costs duplicates
/// (the caller ignores the metadata). So it accepts only what `encode` produces:
/// canonical base64, canonical varints, a matching checksum and committed offset,
/// and no redundant forms.
///
/// Text: `ezp1:` + standard base64 (with padding) of the payload
///
///     [version: UInt8 = 1][kind: UInt8][base: varint][body][CRC-32 of all before it: 4 bytes big-endian]
///
/// Varints are unsigned LEB128, minimal, at most `Int64.max`.
/// - kind 1, bitset: varint bitCount, then ceil(bitCount/8) bytes; bit i (LSB-first
///   within a byte) set ⇔ offset base+1+i finished. bitCount = highest finished − base,
///   so the last bit is always set, and padding bits are 0.
/// - kind 2, runs: varint rangeCount ≥ 1, then per range varint gap (lowerBound − previous
///   upperBound; the first "previous upperBound" is base+1) and varint length ≥ 1. Ranges
///   after the first have gap ≥ 1 (adjacent ranges are merged).
///
/// The encoder picks the shorter kind (runs on a tie) and keeps the whole string
/// within `maxBytes`, recording the lowest finished offsets when not all of them
/// fit: recording fewer is always safe.
public enum OffsetCommitMetadata {
    /// Apache Kafka's default `offset.metadata.max.bytes`.
    public static let defaultMaxBytes = 4096

    public struct Encoded: Hashable, Sendable {
        /// The metadata string (ASCII); "" when nothing is recorded.
        public var metadata: String
        /// The finished ranges actually recorded: all of them, or the lowest ones that fit the cap.
        public var recorded: [Range<Int64>]
        /// True when some finished ranges did not fit under the cap and were left out.
        public var truncated: Bool
    }

    public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
        /// Why the metadata was rejected, for logs.
        public var reason: String
        public var description: String { reason }
    }

    /// `ezp1:`: tells our metadata from anyone else's and carries the text format version.
    private static let prefix: [UInt8] = Array("ezp1:".utf8)
    private static let version: UInt8 = 1
    private enum Kind: UInt8 {
        case bitset = 1
        case runs = 2
    }
    /// version + kind before the base, CRC after the body.
    private static let fixedBytes: Int64 = 2 + 4

    // MARK: - Encoding

    /// `finished`: sorted, disjoint, non-empty ranges, every lowerBound > base
    /// (base is the committed offset, itself unfinished). Precondition-free: if the input
    /// violates this, encode returns "" (recorded empty) rather than trapping.
    public static func encode(base: Int64, finished: [Range<Int64>], maxBytes: Int = defaultMaxBytes) -> Encoded {
        // Invalid input records nothing; it is not a cap problem, so truncated stays false.
        guard let ranges = normalized(base: base, finished: finished), !ranges.isEmpty else {
            return Encoded(metadata: "", recorded: [], truncated: false)
        }
        let limit = payloadLimit(maxBytes: maxBytes)
        let model = SizeModel(base: base, ranges: ranges)
        let n = ranges.count

        if model.size(wholeRanges: n) <= limit {
            return Encoded(metadata: render(base: base, ranges: ranges), recorded: ranges, truncated: false)
        }

        // Sizes only grow as more of the lowest offsets are kept (runs gain a range or a
        // longer last run; the bitset gains bits), so binary search finds the longest
        // prefix that fits: first in whole ranges, then into the next range.
        var fitting = 0, notFitting = n
        while notFitting - fitting > 1 {
            let mid = fitting + (notFitting - fitting) / 2
            if model.size(wholeRanges: mid) <= limit { fitting = mid } else { notFitting = mid }
        }
        let cut = ranges[fitting]
        var keep: Int64 = 0, tooMany = cut.upperBound - cut.lowerBound
        while tooMany - keep > 1 {
            let mid = keep + (tooMany - keep) / 2
            if model.size(wholeRanges: fitting, partial: mid) <= limit { keep = mid } else { tooMany = mid }
        }
        var recorded = Array(ranges[..<fitting])
        if keep > 0 { recorded.append(cut.lowerBound ..< cut.lowerBound + keep) }
        guard !recorded.isEmpty else {
            return Encoded(metadata: "", recorded: [], truncated: true)
        }
        return Encoded(metadata: render(base: base, ranges: recorded), recorded: recorded, truncated: true)
    }

    /// Checks the encoder's input and merges adjacent ranges; nil when invalid.
    private static func normalized(base: Int64, finished: [Range<Int64>]) -> [Range<Int64>]? {
        guard base >= 0 else { return nil }
        var out: [Range<Int64>] = []
        out.reserveCapacity(finished.count)
        for range in finished {
            guard !range.isEmpty, range.lowerBound > base else { return nil }
            if let last = out.last {
                guard range.lowerBound >= last.upperBound else { return nil }
                if range.lowerBound == last.upperBound {
                    out[out.count - 1] = last.lowerBound ..< range.upperBound
                    continue
                }
            }
            out.append(range)
        }
        return out
    }

    /// The largest payload whose text (`ezp1:` + padded base64) fits in `maxBytes`.
    private static func payloadLimit(maxBytes: Int) -> Int64 {
        guard maxBytes >= prefix.count + 4 else { return 0 }
        return Int64(maxBytes - prefix.count) / 4 * 3
    }

    /// Payload sizes of both kinds for a prefix of the ranges, in O(1) after an O(n)
    /// setup, so the cap search never builds a payload and never touches single offsets.
    private struct SizeModel {
        let base: Int64
        let ranges: [Range<Int64>]
        /// Bytes of version, kind, base and CRC.
        let fixed: Int64
        /// `runBytes[k]`: bytes of the (gap, length) pairs of the first k ranges.
        let runBytes: [Int64]

        init(base: Int64, ranges: [Range<Int64>]) {
            self.base = base
            self.ranges = ranges
            fixed = OffsetCommitMetadata.fixedBytes + varintSize(base)
            var sums: [Int64] = [0]
            sums.reserveCapacity(ranges.count + 1)
            var previous = base + 1
            for range in ranges {
                let pair = varintSize(range.lowerBound - previous) + varintSize(range.upperBound - range.lowerBound)
                sums.append(sums[sums.count - 1] + pair)
                previous = range.upperBound
            }
            runBytes = sums
        }

        /// The shorter payload recording the first `wholeRanges` ranges, then the first
        /// `partial` offsets of the next one. Zero when that records nothing.
        func size(wholeRanges m: Int, partial: Int64 = 0) -> Int64 {
            guard m > 0 || partial > 0 else { return 0 }
            var runs = fixed + runBytes[m]
            let highest: Int64
            if partial > 0 {
                let previous = m == 0 ? base + 1 : ranges[m - 1].upperBound
                runs += varintSize(Int64(m + 1)) + varintSize(ranges[m].lowerBound - previous) + varintSize(partial)
                highest = ranges[m].lowerBound + partial - 1
            } else {
                runs += varintSize(Int64(m))
                highest = ranges[m - 1].upperBound - 1
            }
            return min(runs, bitsetSize(bitCount: highest - base, fixed: fixed))
        }
    }

    private static func bitsetSize(bitCount: Int64, fixed: Int64) -> Int64 {
        fixed + varintSize(bitCount) + bitsetByteCount(bitCount)
    }

    private static func bitsetByteCount(_ bitCount: Int64) -> Int64 {
        bitCount / 8 + (bitCount % 8 == 0 ? 0 : 1)
    }

    /// Builds the text for valid, merged, non-empty ranges, in the shorter kind.
    private static func render(base: Int64, ranges: [Range<Int64>]) -> String {
        let fixed = fixedBytes + varintSize(base)
        let model = SizeModel(base: base, ranges: ranges)
        let runs = fixed + varintSize(Int64(ranges.count)) + model.runBytes[ranges.count]
        let bitCount = ranges[ranges.count - 1].upperBound - 1 - base
        let kind: Kind = bitsetSize(bitCount: bitCount, fixed: fixed) < runs ? .bitset : .runs

        var payload: [UInt8] = [version, kind.rawValue]
        appendVarint(base, to: &payload)
        switch kind {
        case .runs:
            appendVarint(Int64(ranges.count), to: &payload)
            var previous = base + 1
            for range in ranges {
                appendVarint(range.lowerBound - previous, to: &payload)
                appendVarint(range.upperBound - range.lowerBound, to: &payload)
                previous = range.upperBound
            }
        case .bitset:
            // Only chosen when shorter than runs, so its size is bounded by the ranges'.
            appendVarint(bitCount, to: &payload)
            var bits = [UInt8](repeating: 0, count: Int(bitsetByteCount(bitCount)))
            for range in ranges {
                setBits(&bits, from: range.lowerBound - base - 1, to: range.upperBound - base - 1)
            }
            payload.append(contentsOf: bits)
        }
        let crc = crc32(payload[...])
        payload.append(contentsOf: [UInt8(crc >> 24 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
        return String(decoding: prefix, as: UTF8.self) + Data(payload).base64EncodedString()
    }

    /// Sets bits `start ..< end` (LSB-first), whole bytes at a time in the middle.
    private static func setBits(_ bits: inout [UInt8], from start: Int64, to end: Int64) {
        var i = Int(start)
        let end = Int(end)
        while i < end && i % 8 != 0 {
            bits[i / 8] |= 1 << UInt8(i % 8)
            i += 1
        }
        while i + 8 <= end {
            bits[i / 8] = 0xFF
            i += 8
        }
        while i < end {
            bits[i / 8] |= 1 << UInt8(i % 8)
            i += 1
        }
    }

    // MARK: - Decoding

    /// "" → []. Anything else must be our format with a matching base, else throws.
    /// Returns sorted, disjoint, non-adjacent ranges all above `base`.
    public static func decode(_ metadata: String, base: Int64) throws -> [Range<Int64>] {
        // Nothing recorded is always safe to return, whatever the committed offset.
        if metadata.isEmpty { return [] }
        guard base >= 0 else { throw DecodeError(reason: "negative committed offset \(base)") }

        let text = Array(metadata.utf8)
        guard text.starts(with: prefix) else { throw DecodeError(reason: "not ezpoll metadata") }
        let encoded = String(decoding: text[prefix.count...], as: UTF8.self)
        // Re-encoding must give the same text: rejects stray characters, missing
        // padding and nonzero padding bits, so one payload has exactly one spelling.
        guard let data = Data(base64Encoded: encoded), data.base64EncodedString() == encoded else {
            throw DecodeError(reason: "invalid base64")
        }
        let payload = [UInt8](data)

        guard let first = payload.first else { throw DecodeError(reason: "empty payload") }
        // Version before the checksum: another version may lay out its checksum differently.
        guard first == version else { throw DecodeError(reason: "unknown version \(first)") }
        guard payload.count >= Int(fixedBytes) else { throw DecodeError(reason: "truncated") }
        let bodyEnd = payload.count - 4
        let stored = payload[bodyEnd...].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard crc32(payload[..<bodyEnd]) == stored else { throw DecodeError(reason: "checksum mismatch") }

        var reader = Reader(bytes: payload, index: 1, end: bodyEnd)
        let kindByte = try reader.byte()
        guard let kind = Kind(rawValue: kindByte) else { throw DecodeError(reason: "unknown kind \(kindByte)") }
        let recordedBase = try reader.varint()
        guard recordedBase == base else {
            throw DecodeError(reason: "base \(recordedBase) does not match committed offset \(base)")
        }
        guard base < Int64.max else { throw DecodeError(reason: "offset overflow") }

        let ranges: [Range<Int64>]
        switch kind {
        case .bitset: ranges = try decodeBitset(&reader, base: base)
        case .runs: ranges = try decodeRuns(&reader, base: base)
        }
        guard reader.index == reader.end else { throw DecodeError(reason: "trailing bytes") }
        return ranges
    }

    private static func decodeBitset(_ reader: inout Reader, base: Int64) throws -> [Range<Int64>] {
        let bitCount = try reader.varint()
        guard bitCount > 0 else { throw DecodeError(reason: "empty bitset") }
        // Checked before touching any byte: a hostile count costs nothing.
        let byteCount = bitsetByteCount(bitCount)
        guard byteCount <= Int64(reader.remaining) else { throw DecodeError(reason: "truncated") }
        // The highest offset, base + bitCount, needs an upperBound of its own.
        guard bitCount < Int64.max - base else { throw DecodeError(reason: "offset overflow") }

        let bytes = reader.bytes[reader.index ..< reader.index + Int(byteCount)]
        reader.index += Int(byteCount)
        let lastByte = bytes[bytes.endIndex - 1]
        let usedBits = Int(bitCount - (byteCount - 1) * 8)
        if usedBits < 8 && lastByte >> UInt8(usedBits) != 0 {
            throw DecodeError(reason: "nonzero bitset padding")
        }
        guard lastByte >> UInt8(usedBits - 1) & 1 == 1 else {
            throw DecodeError(reason: "bitset does not end at its highest offset")
        }

        var ranges: [Range<Int64>] = []
        var runStart: Int64? = nil
        var bit: Int64 = 0
        for byte in bytes {
            if byte == 0 && runStart == nil || byte == 0xFF && runStart != nil {
                bit += 8
                continue
            }
            for shift in 0 ..< 8 {
                let set = byte >> UInt8(shift) & 1 == 1
                if set, runStart == nil {
                    runStart = bit
                } else if !set, let start = runStart {
                    ranges.append(base + 1 + start ..< base + 1 + bit)
                    runStart = nil
                }
                bit += 1
            }
        }
        // The last bit is set, so a run is open; padding bits are 0, so it ends at bitCount.
        if let start = runStart {
            ranges.append(base + 1 + start ..< base + 1 + bitCount)
        }
        return ranges
    }

    private static func decodeRuns(_ reader: inout Reader, base: Int64) throws -> [Range<Int64>] {
        let rangeCount = try reader.varint()
        guard rangeCount > 0 else { throw DecodeError(reason: "empty run list") }
        // Each range takes at least two bytes: refuse counts the payload cannot hold before reserving.
        guard rangeCount <= Int64(reader.remaining / 2) else { throw DecodeError(reason: "truncated") }
        var ranges: [Range<Int64>] = []
        ranges.reserveCapacity(Int(rangeCount))
        var previous = base + 1
        for i in 0 ..< rangeCount {
            let gap = try reader.varint()
            let length = try reader.varint()
            guard i == 0 || gap > 0 else { throw DecodeError(reason: "adjacent runs") }
            guard length > 0 else { throw DecodeError(reason: "zero-length run") }
            let (lower, o1) = previous.addingReportingOverflow(gap)
            guard !o1 else { throw DecodeError(reason: "offset overflow") }
            let (upper, o2) = lower.addingReportingOverflow(length)
            guard !o2 else { throw DecodeError(reason: "offset overflow") }
            ranges.append(lower ..< upper)
            previous = upper
        }
        return ranges
    }

    /// A cursor over the payload's body (the CRC excluded).
    private struct Reader {
        let bytes: [UInt8]
        var index: Int
        let end: Int

        var remaining: Int { end - index }

        mutating func byte() throws -> UInt8 {
            guard index < end else { throw DecodeError(reason: "truncated") }
            defer { index += 1 }
            return bytes[index]
        }

        /// Minimal unsigned LEB128, at most 10 bytes, at most `Int64.max`.
        mutating func varint() throws -> Int64 {
            var value: UInt64 = 0
            for i in 0 ..< 10 {
                let byte = try byte()
                let low = UInt64(byte & 0x7F)
                guard i < 9 || low <= 1 else { throw DecodeError(reason: "varint overflows Int64") }
                value |= low << UInt64(7 * i)
                if byte & 0x80 == 0 {
                    guard i == 0 || byte != 0 else { throw DecodeError(reason: "non-minimal varint") }
                    guard value <= UInt64(Int64.max) else { throw DecodeError(reason: "varint overflows Int64") }
                    return Int64(value)
                }
            }
            throw DecodeError(reason: "varint longer than 10 bytes")
        }
    }

    // MARK: - Varints and CRC

    private static func varintSize(_ value: Int64) -> Int64 {
        let bits = 64 - UInt64(truncatingIfNeeded: value).leadingZeroBitCount
        return Int64(max(1, (bits + 6) / 7))
    }

    private static func appendVarint(_ value: Int64, to out: inout [UInt8]) {
        var v = UInt64(truncatingIfNeeded: value)
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as in zlib: catches the
    /// corruption base64 and varint checks let through before it can mark offsets done.
    private static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }

    private static let crcTable: [UInt32] = (0 ..< 256).map { n in
        var c = UInt32(n)
        for _ in 0 ..< 8 {
            c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1
        }
        return c
    }
}
