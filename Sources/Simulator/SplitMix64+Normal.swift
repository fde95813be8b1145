import Foundation
import TaskModel

extension SplitMix64 {
    /// Standard normal (Box–Muller), for the simulator's log-normal latencies.
    public mutating func normal() -> Double {
        let u1 = max(unit(), .leastNonzeroMagnitude)
        let u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}
