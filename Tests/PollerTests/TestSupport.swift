@testable import Poller
@testable import PollerCore
import TaskModel

/// Deterministic generator for jitter and fuzzing.
typealias SeededRandom = SplitMix64

/// Always draws the lowest value (no jitter), or the highest.
struct ExtremeRandom: RandomNumberGenerator {
    var high: Bool
    mutating func next() -> UInt64 { high ? .max : 0 }
}

func t(_ seconds: Double) -> Timestamp {
    Timestamp(millisecondsSinceEpoch: 1_800_000_000_000 + Int64(seconds * 1000))
}

/// The ez-captcha profile's policy with these timings.
func testPolicy(initialDelay: Duration, interval: Duration, minInterval: Duration) -> PollingPolicy {
    var policy = PollingPolicy(profile: .ezCaptcha)
    policy.initialDelay = initialDelay
    policy.interval = interval
    policy.minInterval = minInterval
    return policy
}
