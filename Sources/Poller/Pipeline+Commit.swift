import Foundation
import Kafka
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskAPI

// Pipeline: drains on a revoke or stop, and the commit loop (offsets with finished-offset metadata).
extension Pipeline {
    /// Waits until the partitions have no call in progress and no unacknowledged
    /// output, or the drain timeout passed. Blocks: the rebalance callback calls it on
    /// the consumer's thread; `drain(_:) async` runs it on a thread of its own.
    func drainBlocking(_ partitions: Set<PartitionID>) {
        guard !partitions.isEmpty else { return }
        let deadline = Date().addingTimeInterval(Double(configuration.drainTimeout.milliseconds) / 1_000)
        var busy = withEngine { $0.busyCount(in: partitions) }
        while busy > 0 && Date() < deadline {
            drained.lock()
            // Bounded wait: a signal between the count and the wait costs at most this.
            _ = drained.wait(until: min(deadline, Date().addingTimeInterval(0.05)))
            drained.unlock()
            busy = withEngine { $0.busyCount(in: partitions) }
        }
        if busy > 0 {
            logger.warning("drain timeout: calls or results still pending; those records will be processed again",
                           metadata: ["pending": "\(busy)", "partitions": "\(partitions.sorted { $0.description < $1.description })"])
        }
    }

    func drain(_ partitions: Set<PartitionID>) async {
        _ = try? await Blocking.run { [self] in drainBlocking(partitions) }
    }

    func signalDrained() {
        drained.lock()
        drained.broadcast()
        drained.unlock()
    }

    /// Commits shortly after something finished; idle when nothing changes.
    func commitLoop() async {
        for await _ in commitRequests {
            try? await Task.sleep(for: configuration.commitInterval)
            await commitPending()
        }
    }

    /// Commits every partition that changed, offsets and finished-offset metadata.
    /// `final`: the last commit of a graceful stop, sent even mid-rebalance.
    func commitPending(final: Bool = false) async {
        _ = try? await Blocking.run { [self] in
            var commits: [OffsetTracker.Commit] = []
            guard let failed = consumer.commitBlocking(force: final, {
                commits = withEngine { $0.pendingCommits() }
                return commits.map(Self.kafkaOffset)
            }) else {
                commitRequester.yield() // held while the group rebalances: try again after the interval
                return
            }
            let refused = commits.filter { failed[Self.topicPartition($0)] != nil }
            if !refused.isEmpty {
                if final {
                    logger.warning("final commit on stop failed; the next owner repeats what finished since the last commit",
                                   metadata: ["errors": "\(failed.values.map(\.message))"])
                } else {
                    logger.warning("offset commit failed; retrying", metadata: ["errors": "\(failed.values.map(\.message))"])
                    perform(withEngine { $0.commitFailed(refused) })
                }
            }
            committed(commits.filter { failed[Self.topicPartition($0)] == nil })
        }
    }

    func committed(_ done: [OffsetTracker.Commit]) {
        guard !done.isEmpty else { return }
        metrics.committed(done, metadataMaxBytes: configuration.engine.maxCommitMetadataBytes)
        for commit in done where commit.truncated {
            logger.warning("finished offsets above the watermark exceed the commit metadata cap; a crash or handover repeats the rest",
                           metadata: ["partition": "\(commit.partition)", "offset": "\(commit.offset)"])
        }
    }

    /// Commits inside the rebalance callback (never held: the generation is current).
    func commitInRebalance(_ commits: [OffsetTracker.Commit], final: Bool) {
        let failed = consumer.commitBlocking(force: false) { commits.map(Self.kafkaOffset) } ?? [:]
        let refused = commits.filter { failed[Self.topicPartition($0)] != nil }
        if !refused.isEmpty {
            logger.warning(final ? "final commit on revoke failed; another owner repeats what finished since the last commit (this member skips it if the partition comes back)"
                                 : "commit at the start of a revoke failed",
                           metadata: ["errors": "\(failed.values.map(\.message))"])
            if final {
                withEngine { $0.finalCommitsRefused(refused) }
            } else {
                perform(withEngine { $0.commitFailed(refused) })
            }
        }
        committed(commits.filter { failed[Self.topicPartition($0)] == nil })
    }

    static func topicPartition(_ commit: OffsetTracker.Commit) -> TopicPartition {
        TopicPartition(commit.partition.topic, commit.partition.partition)
    }

    static func kafkaOffset(_ commit: OffsetTracker.Commit) -> TopicPartitionOffset {
        TopicPartitionOffset(topicPartition(commit), offset: commit.offset, metadata: commit.metadata)
    }
}
