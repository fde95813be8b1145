import Foundation
import NIOConcurrencyHelpers

/// What the bench knows about each task it created: when it was s.created and
/// when the simulator will call it ready (both on the monotonic clock), and
/// what was observed of it on the output topics.
final class BenchTaskBook: Sendable {
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

    private struct State {
        var pending: [String: Entry] = [:]
        var observations: [Observation] = []
        var created = 0
        var duplicatesOrUnknown = 0
    }

    private let state = NIOLockedValueBox(State())

    func add(_ ids: [(String, Entry)]) {
        state.withLockedValue { s in
            for (id, entry) in ids { s.pending[id] = entry }
            s.created += ids.count
        }
    }

    var createdCount: Int { state.withLockedValue { s in s.created } }
    var observedCount: Int { state.withLockedValue { s in s.observations.count } }
    var pendingCount: Int { state.withLockedValue { s in s.pending.count } }
    var unexpectedCount: Int { state.withLockedValue { s in s.duplicatesOrUnknown } }

    /// Records outputs (already parsed outside the lock). Unknown or repeated keys count as unexpected.
    func observe(_ items: [(taskId: String, observation: Observation, solved: Bool)]) {
        state.withLockedValue { s in
            for item in items {
                guard let entry = s.pending.removeValue(forKey: item.taskId) else {
                    s.duplicatesOrUnknown += 1
                    continue
                }
                var observation = item.observation
                if item.solved {
                    observation.detectionDelay = (observation.received - entry.ready).inSeconds
                }
                s.observations.append(observation)
            }
        }
    }

    /// Observations received in `[from, to)`.
    func observations(from: ContinuousClock.Instant, to: ContinuousClock.Instant) -> [Observation] {
        state.withLockedValue { s in s.observations.filter { $0.received >= from && $0.received < to } }
    }

    /// After the load: waits until every created task has its output, at most 10 s plus
    /// 130 API s at this time scale (past the longest solve time the bench draws, 120 s).
    func waitForOutputs(timeScale: Double) async throws {
        let deadline = ContinuousClock.now + .seconds(10) + .milliseconds(Int64(130 / timeScale * 1000))
        while pendingCount > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
    }

    func allObservations() -> [Observation] { state.withLockedValue { s in s.observations } }
}
