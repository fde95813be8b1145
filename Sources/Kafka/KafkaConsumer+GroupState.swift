import Foundation

extension KafkaConsumer {
    /// When explicit commits may go out: only in the group's `steady` join state, and
    /// not between a commit that met a rebalance and the next rebalance callback.
    /// Fed from librdkafka's threads (log and rebalance callbacks) and read by commits.
    final class GroupState: @unchecked Sendable { // every field is guarded by `lock`
        private let lock = NSLock()
        /// The join state librdkafka last reported; nil until the first report (then
        /// only the rebalance-conflict rule applies).
        private var joinState: String?
        private var heldSince: Date?

        func joinStateChanged(to state: String) {
            lock.withLock {
                joinState = state
                if state == "steady" { heldSince = nil }
            }
        }

        /// A commit was refused because the group is rebalancing.
        func metRebalance() { lock.withLock { heldSince = Date() } }

        /// The rebalance callback runs: the member's generation is current.
        func rebalanceCallback() { lock.withLock { heldSince = nil } }

        func commitsHeld(sessionTimeout: TimeInterval) -> Bool {
            lock.withLock {
                if let since = heldSince, Date().timeIntervalSince(since) < sessionTimeout { return true }
                heldSince = nil
                return joinState.map { $0 != "steady" } ?? false
            }
        }
    }
}
