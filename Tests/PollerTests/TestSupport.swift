@testable import Poller

/// Deterministic generator for jitter and fuzzing (SplitMix64).
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Always draws the lowest value (no jitter), or the highest.
struct ExtremeRandom: RandomNumberGenerator {
    var high: Bool
    mutating func next() -> UInt64 { high ? .max : 0 }
}

func t(_ seconds: Double) -> Timestamp {
    Timestamp(millisecondsSinceEpoch: 1_800_000_000_000 + Int64(seconds * 1000))
}
