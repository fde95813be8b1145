import Foundation
import Testing
import Poller
import TaskModel

/// The finished-offsets codec. A decode that returns an offset the encoder was not
/// given would lose a task, so most of these tests attack the decoder.
@Suite struct OffsetCommitMetadataTests {
    typealias Codec = OffsetCommitMetadata

    // MARK: Helpers (private: other suites may have their own)

    /// Sorted, merged ranges of a set of offsets.
    private func ranges(_ offsets: [Int64]) -> [Range<Int64>] {
        var out: [Range<Int64>] = []
        for offset in Set(offsets).sorted() {
            if let last = out.last, last.upperBound == offset {
                out[out.count - 1] = last.lowerBound ..< offset + 1
            } else {
                out.append(offset ..< offset + 1)
            }
        }
        return out
    }

    private func expand(_ ranges: [Range<Int64>]) -> [Int64] {
        ranges.flatMap { Array($0) }
    }

    /// The binary payload behind a metadata string (nil if it is not prefix + base64).
    private func payload(_ metadata: String) -> [UInt8]? {
        guard metadata.hasPrefix("ezp1:"), let data = Data(base64Encoded: String(metadata.dropFirst(5))) else { return nil }
        return [UInt8](data)
    }

    /// Independent bitwise CRC-32 (IEEE), to forge payloads that pass the checksum.
    private func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0 ..< 8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    /// A metadata string for `body` (everything before the CRC) with a correct CRC.
    private func seal(_ body: [UInt8]) -> String {
        let crc = crc32(body)
        let bytes = body + [UInt8(crc >> 24 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        return "ezp1:" + Data(bytes).base64EncodedString()
    }

    /// Encodes under the default cap, expects everything recorded, decodes back.
    @discardableResult
    private func roundTrip(base: Int64, _ finished: [Range<Int64>], sourceLocation: SourceLocation = #_sourceLocation) throws -> Codec.Encoded {
        let encoded = Codec.encode(base: base, finished: finished)
        #expect(!encoded.truncated, sourceLocation: sourceLocation)
        #expect(encoded.recorded == finished, sourceLocation: sourceLocation)
        #expect(encoded.metadata.utf8.count <= Codec.defaultMaxBytes, sourceLocation: sourceLocation)
        let ascii = encoded.metadata.utf8.allSatisfy { $0 < 0x80 }
        #expect(ascii, sourceLocation: sourceLocation)
        #expect(try Codec.decode(encoded.metadata, base: base) == finished, sourceLocation: sourceLocation)
        return encoded
    }

    private func count(_ ranges: [Range<Int64>]) -> Int64 {
        ranges.reduce(0) { $0 + ($1.upperBound - $1.lowerBound) }
    }

    /// The lowest `count` offsets of `ranges`, as ranges (no per-offset work: ranges may be huge).
    private func lowest(_ count: Int64, of ranges: [Range<Int64>]) -> [Range<Int64>] {
        var left = count
        var out: [Range<Int64>] = []
        for range in ranges where left > 0 {
            let take = min(left, range.upperBound - range.lowerBound)
            out.append(range.lowerBound ..< range.lowerBound + take)
            left -= take
        }
        return out
    }

    /// Encodes under `cap` and checks the cap contract: within the cap, the lowest
    /// offsets exactly, decodable, and maximal (one more offset would not fit).
    private func checkCapped(base: Int64, _ finished: [Range<Int64>], cap: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> Codec.Encoded {
        let encoded = Codec.encode(base: base, finished: finished, maxBytes: cap)
        let recordedCount = count(encoded.recorded)
        #expect(encoded.metadata.utf8.count <= max(cap, 0), sourceLocation: sourceLocation)
        #expect(encoded.recorded == lowest(recordedCount, of: finished), "recorded offsets are not the lowest ones", sourceLocation: sourceLocation)
        #expect(encoded.truncated == (recordedCount < count(finished)), sourceLocation: sourceLocation)
        #expect(encoded.recorded.allSatisfy { r in finished.contains { $0.lowerBound <= r.lowerBound && r.upperBound <= $0.upperBound } },
                sourceLocation: sourceLocation)
        #expect(try Codec.decode(encoded.metadata, base: base) == encoded.recorded, sourceLocation: sourceLocation)
        if encoded.truncated {
            let oneMore = Codec.encode(base: base, finished: lowest(recordedCount + 1, of: finished), maxBytes: cap)
            #expect(oneMore.truncated, "a longer prefix would have fit", sourceLocation: sourceLocation)
        }
        return encoded
    }

    // MARK: Round trips

    @Test("a single offset, right above the base and far above it")
    func singleOffset() throws {
        try roundTrip(base: 10, [11 ..< 12])
        try roundTrip(base: 10, [500 ..< 501])
        try roundTrip(base: 0, [1 ..< 2])
    }

    @Test("ranges with gaps")
    func gaps() throws {
        try roundTrip(base: 0, [1 ..< 2, 5 ..< 7, 100 ..< 200])
        try roundTrip(base: 41, [43 ..< 44, 46 ..< 47, 1_000 ..< 1_001, 1_000_000 ..< 1_000_010])
    }

    @Test("adjacent input ranges are merged")
    func adjacentRangesMerge() throws {
        let encoded = Codec.encode(base: 0, finished: [1 ..< 3, 3 ..< 5, 7 ..< 8])
        #expect(encoded.recorded == [1 ..< 5, 7 ..< 8])
        #expect(!encoded.truncated)
        #expect(try Codec.decode(encoded.metadata, base: 0) == [1 ..< 5, 7 ..< 8])
    }

    @Test("one range of ten million offsets is a few bytes (runs)")
    func hugeRange() throws {
        let base: Int64 = 1_234
        let encoded = try roundTrip(base: base, [base + 1 ..< base + 10_000_001])
        #expect(encoded.metadata.utf8.count < 40)
        #expect(payload(encoded.metadata)?[1] == 2)
    }

    @Test("500 offsets spaced a million apart near Int64.max / 2")
    func spreadOffsets() throws {
        let base = Int64.max / 2
        let offsets = (0 ..< 500).map { base + 1 + Int64($0) * 1_000_000 }
        let encoded = try roundTrip(base: base, ranges(offsets))
        #expect(payload(encoded.metadata)?[1] == 2)
    }

    @Test("2,000 random offsets within 3,000 fit as a bitset")
    func denseOffsets() throws {
        var rng = SplitMix64(seed: 42)
        let base: Int64 = 77
        let offsets = Array((1 ... 3_000).map { base + Int64($0) }.shuffled(using: &rng).prefix(2_000))
        let finished = ranges(offsets)
        let encoded = try roundTrip(base: base, finished)
        #expect(payload(encoded.metadata)?[1] == 1)
        // Runs would need at least two bytes per range.
        #expect(encoded.metadata.utf8.count < 5 + (2 * finished.count) / 3 * 4)
    }

    @Test("offsets at the top of Int64")
    func topOfRange() throws {
        try roundTrip(base: Int64.max - 10, [Int64.max - 9 ..< Int64.max])
        try roundTrip(base: 0, [1 ..< Int64.max])
        try roundTrip(base: 0, [Int64.max - 1 ..< Int64.max])
    }

    @Test("random sets round-trip without a cap")
    func randomRoundTrips() throws {
        var rng = SplitMix64(seed: 7)
        for trial in 0 ..< 200 {
            let base = Int64.random(in: 0 ... 1_000_000, using: &rng)
            let step = Int64([2, 3, 10, 100_000][trial % 4])
            var current = base
            var offsets: [Int64] = []
            for _ in 0 ..< Int.random(in: 1 ... 400, using: &rng) {
                current += Int64.random(in: 1 ... step, using: &rng)
                offsets.append(current)
            }
            let finished = ranges(offsets)
            let encoded = Codec.encode(base: base, finished: finished, maxBytes: .max)
            #expect(!encoded.truncated)
            #expect(try Codec.decode(encoded.metadata, base: base) == finished)
        }
    }

    // MARK: Nothing to record, invalid input

    @Test("empty input encodes to \"\" and \"\" decodes to []")
    func empty() throws {
        let encoded = Codec.encode(base: 5, finished: [])
        #expect(encoded.metadata == "")
        #expect(encoded.recorded.isEmpty)
        #expect(!encoded.truncated)
        #expect(try Codec.decode("", base: 5) == [])
    }

    @Test("invalid input encodes to \"\" instead of trapping")
    func invalidInput() {
        let cases: [(Int64, [Range<Int64>])] = [
            (-1, [1 ..< 2]),               // negative base
            (5, [5 ..< 6]),                // the base itself is unfinished
            (5, [3 ..< 4]),                // below the base
            (0, [4 ..< 5, 1 ..< 2]),       // unsorted
            (0, [1 ..< 5, 3 ..< 8]),       // overlapping
            (0, [3 ..< 3]),                // empty range
        ]
        for (base, finished) in cases {
            let encoded = Codec.encode(base: base, finished: finished)
            #expect(encoded.metadata == "", "\(base) \(finished)")
            #expect(encoded.recorded.isEmpty)
        }
    }

    // MARK: The cap

    @Test("a set over the cap keeps exactly its lowest offsets")
    func truncatedToPrefix() throws {
        var rng = SplitMix64(seed: 3)
        var current: Int64 = 1_000
        var offsets: [Int64] = []
        for _ in 0 ..< 5_000 {
            current += Int64.random(in: 2 ... 5_000, using: &rng)
            offsets.append(current)
        }
        let encoded = try checkCapped(base: 1_000, ranges(offsets), cap: Codec.defaultMaxBytes)
        #expect(encoded.truncated)
        #expect(!encoded.recorded.isEmpty)
    }

    @Test("random sets under random small caps")
    func randomCaps() throws {
        var rng = SplitMix64(seed: 11)
        var truncations = 0
        for trial in 0 ..< 200 {
            let base = Int64.random(in: 0 ... 1_000_000, using: &rng)
            let step = Int64([3, 10, 100, 100_000][trial % 4])
            var current = base
            var offsets: [Int64] = []
            for _ in 0 ..< Int.random(in: 1 ... 300, using: &rng) {
                current += Int64.random(in: 1 ... step, using: &rng)
                offsets.append(current)
            }
            let encoded = try checkCapped(base: base, ranges(offsets), cap: Int.random(in: 0 ... 300, using: &rng))
            if encoded.truncated { truncations += 1 }
        }
        #expect(truncations > 50)
    }

    @Test("a range is cut short when it does not fit whole")
    func rangeCutShort() throws {
        // Runs payload: version, kind, base, count, gap, a 3-byte length, CRC = 12 bytes = 16 base64 + 5.
        let encoded = try checkCapped(base: 0, [1 ..< 10_000_001], cap: 21)
        #expect(encoded.truncated)
        #expect(encoded.recorded == [1 ..< 1 + (1 << 21) - 1])
    }

    @Test("a cap too small for anything gives \"\", truncated")
    func tinyCap() {
        for cap in [Int.min, -1, 0, 5, 10, 16] {
            let encoded = Codec.encode(base: 0, finished: [1 ..< 2], maxBytes: cap)
            #expect(encoded.metadata == "")
            #expect(encoded.recorded.isEmpty)
            #expect(encoded.truncated)
        }
        #expect(!Codec.encode(base: 0, finished: [1 ..< 2], maxBytes: 17).truncated)
    }

    // MARK: The decoder rejects

    @Test("corrupting any character never yields an offset that was not finished")
    func corruption() throws {
        var rng = SplitMix64(seed: 5)
        let dense = ranges(Array((1 ... 300).map { Int64($0) }.shuffled(using: &rng).prefix(200)))
        let cases: [(Int64, [Range<Int64>])] = [(0, [1 ..< 2, 5 ..< 7, 100 ..< 200]), (0, dense)]
        for (base, finished) in cases {
            let encoded = Codec.encode(base: base, finished: finished)
            let allowed = Set(expand(finished))
            let characters = Array(encoded.metadata)
            for i in characters.indices {
                for replacement in ["A", "B", "z", "0", "+", "/", "=", " ", "é"] as [Character] where replacement != characters[i] {
                    var corrupt = characters
                    corrupt[i] = replacement
                    if let decoded = try? Codec.decode(String(corrupt), base: base) {
                        #expect(expand(decoded).allSatisfy(allowed.contains), "position \(i) → \(replacement)")
                    }
                }
            }
        }
    }

    @Test("every proper prefix of a valid string is rejected")
    func prefixes() throws {
        let cases: [(Int64, [Range<Int64>])] = [(0, [1 ..< 2, 5 ..< 7, 100 ..< 200]), (9, [10 ..< 11, 12 ..< 13, 17 ..< 18])]
        for (base, finished) in cases {
            let metadata = Codec.encode(base: base, finished: finished).metadata
            let characters = Array(metadata)
            // The empty prefix is "" (nothing recorded), which decodes to [].
            for length in 1 ..< characters.count {
                #expect(throws: Codec.DecodeError.self) { try Codec.decode(String(characters[..<length]), base: base) }
            }
        }
    }

    @Test("a different base is rejected")
    func wrongBase() throws {
        let metadata = Codec.encode(base: 120, finished: [122 ..< 130]).metadata
        #expect(throws: Codec.DecodeError.self) { try Codec.decode(metadata, base: 121) }
        #expect(throws: Codec.DecodeError.self) { try Codec.decode(metadata, base: 100) }
        #expect(throws: Codec.DecodeError.self) { try Codec.decode(metadata, base: -1) }
    }

    @Test("the test's CRC and framing match the encoder's")
    func forgeryMatchesEncoder() throws {
        let metadata = Codec.encode(base: 77, finished: [78 ..< 80, 90 ..< 91]).metadata
        let bytes = try #require(payload(metadata))
        #expect(seal(Array(bytes.dropLast(4))) == metadata)
        #expect(try Codec.decode(seal([1, 1, 0, 3, 0x05]), base: 0) == [1 ..< 2, 3 ..< 4])
        #expect(try Codec.decode(seal([1, 2, 0, 2, 0, 1, 1, 2]), base: 0) == [1 ..< 2, 3 ..< 5])
    }

    @Test("an unknown version or kind is rejected even with a correct CRC")
    func unknownVersionAndKind() throws {
        let metadata = Codec.encode(base: 0, finished: [1 ..< 2, 5 ..< 7]).metadata
        var body = Array(try #require(payload(metadata)).dropLast(4))
        body[0] = 2
        #expect(throws: Codec.DecodeError.self) { try Codec.decode(seal(body), base: 0) }
        body[0] = 1
        body[1] = 3
        #expect(throws: Codec.DecodeError.self) { try Codec.decode(seal(body), base: 0) }
    }

    @Test("malformed payloads with a correct CRC are rejected")
    func malformedPayloads() {
        let bodies: [[UInt8]] = [
            [1, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],           // bitCount Int64.max: cannot be held
            [1, 2, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],           // rangeCount Int64.max
            [1, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],     // varint over Int64
            [1, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // varint over 10 bytes
            [1, 2, 0, 0x81, 0x00, 0, 1],                                               // non-minimal varint
            [1, 2, 0x80],                                                              // truncated varint
            [1, 2, 0, 1, 0, 0],                                                        // zero-length run
            [1, 2, 0, 2, 0, 1, 0, 1],                                                  // adjacent runs
            [1, 2, 0, 2, 0, 1, 5],                                                     // truncated runs
            [1, 2, 0, 1, 0, 1, 0],                                                     // trailing byte
            [1, 2, 0, 0],                                                              // no runs
            [1, 1, 0, 0],                                                              // empty bitset
            [1, 1, 0, 3, 0x0F],                                                        // nonzero padding bits
            [1, 1, 0, 3, 0x03],                                                        // highest bit clear
            [1, 1, 0, 9, 0xFF],                                                        // truncated bitset
            [1, 2, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 1],     // offsets overflow Int64
            [1, 1],
            [1],
            [],
        ]
        for body in bodies {
            #expect(throws: Codec.DecodeError.self, "\(body)") { try Codec.decode(seal(body), base: 0) }
        }
    }

    @Test("a hostile huge bitCount is rejected before allocating")
    func hostileBitCount() {
        // 2^62 bits would be 512 PiB: the decoder must refuse it from the remaining length.
        let body: [UInt8] = [1, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]
        let start = ContinuousClock.now
        #expect(throws: Codec.DecodeError.self) { try Codec.decode(seal(body), base: 0) }
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test("text that is not ours is rejected")
    func notOurs() throws {
        for text in ["x", "xyz", "ezp1", "ezp1:", "ezp1:AQ", "ezp1:AQ=", "ezp2:AQEAAQEt4rgf", "EZP1:AQEAAQEt4rgf", "ezp1:AQEAAQEt4rgf\n", " ezp1:AQEAAQEt4rgf"] {
            #expect(throws: Codec.DecodeError.self, "\(text)") { try Codec.decode(text, base: 0) }
        }
        #expect(try Codec.decode("ezp1:AQEAAQEt4rgf", base: 0) == [1 ..< 2])
    }

    @Test("random garbage never decodes")
    func garbage() {
        var rng = SplitMix64(seed: 99)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
        for _ in 0 ..< 5_000 {
            let body = String((0 ..< Int.random(in: 1 ... 40, using: &rng)).map { _ in alphabet.randomElement(using: &rng) ?? "A" })
            let text = Bool.random(using: &rng) ? "ezp1:" + body : body
            #expect(throws: Codec.DecodeError.self, "\(text)") { try Codec.decode(text, base: 0) }
        }
    }

    @Test("decode errors say why")
    func reasons() {
        #expect(throws: Codec.DecodeError.self) { try Codec.decode("hello", base: 0) }
        do {
            _ = try Codec.decode(Codec.encode(base: 100, finished: [101 ..< 102]).metadata, base: 120)
            Issue.record("expected a throw")
        } catch let error as Codec.DecodeError {
            #expect(error.description == "base 100 does not match committed offset 120")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
