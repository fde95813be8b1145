import Foundation
import Logging
import NIOConcurrencyHelpers

extension KafkaConsumer {
    /// Answers librdkafka's rebalance callback, on the polling thread. Built before
    /// the client and fixed in its callback context; it reaches the consumer's state
    /// and buffer, never the consumer itself.
    struct Rebalancer: Sendable {
        let configuration: KafkaConsumerConfiguration
        let logger: Logger
        let state: NIOLockedValueBox<StateMachine>
        let pauseOrder: NIOLock
        let buffer: RecordBuffer

        /// Assign: take the partitions, re-apply the pause state (a partition that must be
        /// paused comes back paused), then tell the application. Revoke: tell the
        /// application *first* (it stores final offsets and drops the work while the
        /// partitions are still assigned), drop their buffered records, then unassign.
        func handle(_ rebalance: RDKafkaRebalance) {
            let partitions = rebalance.partitions
            let cooperative = rebalance.isCooperative
            let consumer = rebalance.consumer
            // The group reached its sync point: this member's generation is current, so
            // commits are safe again (also the handler's own, made inside this callback).
            state.withLockedValue { $0.rebalanceCallbackStarted() }
            Thread.current.threadDictionary[KafkaConsumer.rebalanceThreadKey] = true
            defer { Thread.current.threadDictionary[KafkaConsumer.rebalanceThreadKey] = nil }
            switch rebalance.kind {
            case .assign:
                let action = state.withLockedValue { $0.assigned(partitions, cooperative: cooperative) }
                // The committed offsets with their metadata, read before fetching starts so
                // the application knows which records the last owner finished; fetching then
                // starts exactly there (librdkafka would otherwise read them once more).
                let committed: [TopicPartition: TopicPartitionOffset]?
                do {
                    let offsets = try consumer.committed(partitions, timeoutMs: Int32(clamping: configuration.effectiveSessionTimeoutMs))
                    rebalance.startAt(offsets)
                    committed = offsets
                } catch {
                    committed = nil
                    logger.warning("committed offsets not read before the assignment; records the last owner finished may repeat",
                                   metadata: ["error": "\(error)"])
                }
                // Pause before the assign so the fetcher never starts on a partition that
                // must stay paused. After it, apply the pause state as it is now, in order
                // with pauseAll/resumeAll (`pauseOrder`): one that another thread made since
                // `assigned` is neither lost nor undone, and a pause left from an earlier
                // assignment is cleared.
                consumer.setPaused(action.pause, paused: true, logger: logger)
                rebalance.assign(cooperative: cooperative, logger: logger)
                pauseOrder.withLock {
                    let now = state.withLockedValue { $0.pauseSplit(partitions) }
                    consumer.setPaused(now.pause, paused: true, logger: logger)
                    consumer.setPaused(now.resume, paused: false, logger: logger)
                }
                logger.info("partitions assigned", metadata: ["partitions": "\(partitions.sorted())"])
                action.handler?(.assigned(partitions, committed: committed))

            case .revoke:
                let lost = rebalance.isAssignmentLost
                let handler = state.withLockedValue { $0.rebalanceHandler }
                logger.info("partitions revoked", metadata: ["partitions": "\(partitions.sorted())", "lost": "\(lost)"])
                handler?(.revoked(partitions, lost: lost))
                if !lost && configuration.autoCommitIntervalMs != nil {
                    // Commit what the handler stored now, synchronously, while the partitions are
                    // still ours: the unassign's own commit is asynchronous, and the next owner
                    // could fetch the committed offsets before it lands and replay more than needed.
                    if let failure = consumer.commitStored() {
                        logger.warning("commit on revoke: \(failure)")
                    }
                }
                buffer.removeRecords(of: Set(partitions))
                state.withLockedValue { $0.revoked(partitions, cooperative: cooperative) }
                rebalance.unassign(cooperative: cooperative, logger: logger)

            case .error(let text):
                logger.error("rebalance error: \(text)")
                let (revoked, handler) = state.withLockedValue { ($0.rebalanceFailed(), $0.rebalanceHandler) }
                if !revoked.isEmpty { handler?(.revoked(revoked, lost: true)) }
                buffer.removeRecords(of: Set(revoked))
                rebalance.unassignAll()
            }
        }
    }
}
