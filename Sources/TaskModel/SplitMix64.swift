/// The one seedable generator (SplitMix64): backoff jitter in the engine and the
/// simulator's draws. Deterministic for a seed; `init()` seeds from the system
/// generator for production.
public struct SplitMix64: RandomNumberGenerator, Hashable, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    /// A generator for stream `index` of `seed`: independent of other streams,
    /// so draw n of a stream is the same whatever other streams drew before it.
    public init(seed: UInt64, stream index: UInt64) {
        var mixer = SplitMix64(seed: seed ^ (index &* 0x9E37_79B9_7F4A_7C15))
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

    /// True with probability `p`; draws nothing when p ≤ 0.
    public mutating func chance(_ p: Double) -> Bool {
        guard p > 0 else { return false }
        return unit() < p
    }
}
