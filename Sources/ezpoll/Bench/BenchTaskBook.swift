import Foundation

/// What the bench knows about each task it created: when it was created and
/// when the simulator will call it ready (both on the monotonic clock), and
/// what was observed of it on the output topics.
final class BenchTaskBook: @unchecked Sendable {
    struct Entry {
        var created: ContinuousClock.Instant
        var ready: ContinuousClock.Instant
    }

    /// One output seen on an output topic.
    struct Observation: Sendable {
        var received: ContinuousClock.Instant
        var topic: String
        /// Task ready → output seen (solutions only), seconds.
        var detectionDelay: Double?
        /// `resolvedAt` (wall clock, ms precision) → output seen, seconds.
        var addedLatency: Double?
        var polls: Int?
    }

    private let lock = NSLock()
    private var pending: [String: Entry] = [:]
    private var observations: [Observation] = []
    private var created = 0
    private var duplicatesOrUnknown = 0

    func add(_ ids: [(String, Entry)]) {
        lock.withLock {
            for (id, entry) in ids { pending[id] = entry }
            created += ids.count
        }
    }

    var createdCount: Int { lock.withLock { created } }
    var observedCount: Int { lock.withLock { observations.count } }
    var pendingCount: Int { lock.withLock { pending.count } }
    var unexpectedCount: Int { lock.withLock { duplicatesOrUnknown } }

    /// Records outputs (already parsed outside the lock). Unknown or repeated keys count as unexpected.
    func observe(_ items: [(taskId: String, observation: Observation, solved: Bool)]) {
        lock.withLock {
            for item in items {
                guard let entry = pending.removeValue(forKey: item.taskId) else {
                    duplicatesOrUnknown += 1
                    continue
                }
                var observation = item.observation
                if item.solved {
                    observation.detectionDelay = (observation.received - entry.ready).inSeconds
                }
                observations.append(observation)
            }
        }
    }

    /// Observations received in `[from, to)`.
    func observations(from: ContinuousClock.Instant, to: ContinuousClock.Instant) -> [Observation] {
        lock.withLock { observations.filter { $0.received >= from && $0.received < to } }
    }

    func allObservations() -> [Observation] { lock.withLock { observations } }
}

extension Duration {
    var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
