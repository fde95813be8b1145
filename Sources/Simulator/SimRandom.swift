import Foundation

/// SplitMix64: a small, fast, seedable generator. Deterministic for a seed.
public struct SimRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    /// A generator for stream `index` of `seed`: independent of other streams,
    /// so task n draws the same values whatever happened before it.
    public init(seed: UInt64, stream index: UInt64) {
        var mixer = SimRandom(seed: seed ^ (index &* 0x9E37_79B9_7F4A_7C15))
        state = mixer.next() ^ index
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = max(unit(), .leastNonzeroMagnitude)
        let u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    /// True with probability `p`; draws nothing when p ≤ 0.
    public mutating func chance(_ p: Double) -> Bool {
        guard p > 0 else { return false }
        return unit() < p
    }
}

