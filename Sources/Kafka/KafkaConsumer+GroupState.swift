import Foundation
import NIOConcurrencyHelpers

extension KafkaConsumer {
    /// When explicit commits may go out: only in the group's `steady` join state, and
    /// not between a commit that met a rebalance and the next rebalance callback.
    /// Fed from librdkafka's threads (log and rebalance callbacks) and read by commits.
    final class GroupState: Sendable {
        private struct State {
            /// The join state librdkafka last reported; nil until the first report (then
            /// only the rebalance-conflict rule applies).
            var joinState: String?
            var heldSince: Date?
        }

        private let state = NIOLockedValueBox(State())

        func joinStateChanged(to joinState: String) {
            state.withLockedValue {
                $0.joinState = joinState
                if joinState == "steady" { $0.heldSince = nil }
            }
        }

        /// A commit was refused because the group is rebalancing.
        func metRebalance() { state.withLockedValue { $0.heldSince = Date() } }

        /// The rebalance callback runs: the member's generation is current.
        func rebalanceCallback() { state.withLockedValue { $0.heldSince = nil } }

        func commitsHeld(sessionTimeout: TimeInterval) -> Bool {
            state.withLockedValue {
                if let since = $0.heldSince, Date().timeIntervalSince(since) < sessionTimeout { return true }
                $0.heldSince = nil
                return $0.joinState.map { $0 != "steady" } ?? false
            }
        }
    }
}
