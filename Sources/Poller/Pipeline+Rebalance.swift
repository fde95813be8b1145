import Foundation
import Kafka
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskAPI

// Pipeline: assign, revoke and lost (on the consumer's thread, inside librdkafka's callback), and the call share.
extension Pipeline {
    func rebalanced(_ event: KafkaConsumer.RebalanceEvent) {
        switch event {
        case .assigned(let partitions, let committed):
            let assigned = partitions.map { tp in
                PollingEngine.AssignedPartition(PartitionID(topic: tp.topic, partition: tp.partition),
                                                committedOffset: committed?[tp]?.offset, metadata: committed?[tp]?.metadata)
            }
            perform(withEngine { $0.assigned(assigned) })
            metrics.assigned() // the consumer logs the assignment
            updateCallShare(lookUpPartitions: true)
        case .revoked(let partitions, let lost):
            let ids = partitions.map { PartitionID(topic: $0.topic, partition: $0.partition) }
            if lost {
                // Another member may own them already: no drain, no commit.
                perform(withEngine { $0.revoked(ids, lost: true) }.actions)
            } else {
                // Commit what is acknowledged now, at once: the group may enter its next
                // join round while calls drain, and then refuses commits until it is over
                // (the embedded broker does; Kafka accepts them until the sync). Then calls
                // in progress finish, their outputs are acknowledged, and the final state
                // is committed while the partitions are still ours.
                perform(withEngine { $0.revoking(ids) })
                commitInRebalance(withEngine { $0.pendingCommits() }, final: false)
                drainBlocking(Set(ids))
                var actions: [PollingEngine.Action] = []
                var commits: [OffsetTracker.Commit] = []
                withEngine { engine in (commits, actions) = engine.revoked(ids) }
                perform(actions)
                commitInRebalance(commits, final: true)
            }
            metrics.revoked(Array(partitions)) // the consumer logs the revoke
            if let tracing {
                let held = withEngine { engine in Set(tracing.notedHandles.filter(engine.holds)) }
                tracing.forget(unless: held.contains)
            }
            updateCallShare(lookUpPartitions: false)
        }
    }

    /// One key's rate limit is shared by the group: this member's share is its input
    /// partitions over all of them (the assignor spreads them evenly; a member's tasks
    /// come only from its partitions). Applied at once with the partition count known;
    /// on assignment the count is looked up again (a metadata request) on a thread of its
    /// own, so the rebalance callback never waits for it.
    func updateCallShare(lookUpPartitions: Bool) {
        guard configuration.shareRateLimitWithGroup else { return }
        if let total = inputPartitionCount.withLockedValue({ $0 }) { applyCallShare(total: total) }
        guard lookUpPartitions else { return }
        let topic = configuration.topics.input
        Thread.detachNewThread { [self] in
            guard let total = consumer.partitionCount(of: topic, timeoutMs: 5_000), total > 0 else {
                logger.warning("the input topic's partition count is unknown; the call-rate share stays as it was", metadata: ["topic": "\(topic)"])
                return
            }
            inputPartitionCount.withLockedValue { $0 = total }
            applyCallShare(total: total)
        }
    }

    func applyCallShare(total: Int) {
        let topic = configuration.topics.input
        let now = WallClock.now()
        let (mine, rate, changed) = withEngine { engine -> (Int, Double, Bool) in
            let mine = engine.assignedPartitions.filter { $0.topic == topic }.count
            let before = engine.callShare
            engine.setCallShare(Double(mine) / Double(total), now: now)
            return (mine, engine.callsPerSecond, engine.callShare != before)
        }
        guard changed else { return }
        logger.info("call budget shared by the group", metadata: [
            "partitions": "\(mine) of \(total)", "rateLimit": "\(configuration.engine.rateLimit)",
            "callsPerSecond": "\((rate * 100).rounded() / 100)",
        ])
    }
}
