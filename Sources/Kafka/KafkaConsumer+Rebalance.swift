import CRdKafka
import Foundation
import Logging

extension KafkaConsumer {
    /// Runs inside librdkafka's rebalance callback, on the polling thread.
    ///
    /// Assign: take the partitions, re-apply the pause state (a partition that must be
    /// paused comes back paused), then tell the application. Revoke: tell the
    /// application *first* (it stores final offsets and drops the work while the
    /// partitions are still assigned), drop their buffered records, then unassign.
    func handleRebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t,
                         _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let partitions = RDKafkaTopicPartitionList.partitions(list)
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        // The group reached its sync point: this member's generation is current, so
        // commits are safe again (also the handler's own, made inside this callback).
        group.rebalanceCallback()
        Thread.current.threadDictionary[Self.rebalanceThreadKey] = true
        defer { Thread.current.threadDictionary[Self.rebalanceThreadKey] = nil }
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            let (toPause, toResume, handler) = lock.withLock {
                if cooperative { assignment.formUnion(partitions) } else { assignment = Set(partitions) }
                rebalanceGeneration += 1
                hasBeenAssigned = true
                let paused = partitions.filter { pauseAllAssigned || pausedPartitions.contains($0) }
                let running = partitions.filter { !(pauseAllAssigned || pausedPartitions.contains($0)) }
                return (paused, running, rebalanceHandler)
            }
            // The committed offsets with their metadata, read before fetching starts so
            // the application knows which records the last owner finished; fetching then
            // starts exactly there (librdkafka would otherwise read them once more).
            let committed: [TopicPartition: TopicPartitionOffset]?
            do {
                committed = try committedBlocking(partitions, timeoutMs: Int32(clamping: configuration.effectiveSessionTimeoutMs))
                Self.setOffsets(list, committed!)
            } catch {
                committed = nil
                logger.warning("committed offsets not read before the assignment; records the last owner finished may repeat",
                               metadata: ["error": "\(error)"])
            }
            // Pause before the assign so the fetcher never starts on a partition that
            // must stay paused, and again after it in case the partition was not known
            // yet; resume the others to clear a pause left from an earlier assignment.
            setPaused(toPause, paused: true)
            Self.assign(rk, list, cooperative: cooperative, logger: logger)
            setPaused(toPause, paused: true)
            setPaused(toResume, paused: false)
            logger.info("partitions assigned", metadata: ["partitions": "\(partitions.sorted())"])
            handler?(.assigned(partitions, committed: committed))

        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            let handler = lock.withLock { rebalanceHandler }
            logger.info("partitions revoked", metadata: ["partitions": "\(partitions.sorted())", "lost": "\(lost)"])
            handler?(.revoked(partitions, lost: lost))
            if !lost && configuration.autoCommitIntervalMs != nil {
                // Commit what the handler stored now, synchronously, while the partitions are
                // still ours: the unassign's own commit is asynchronous, and the next owner
                // could fetch the committed offsets before it lands and replay more than needed.
                let err = rd_kafka_commit(rk, nil, 0)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
                    logger.warning("commit on revoke: \(String(cString: rd_kafka_err2str(err)))")
                }
            }
            buffer.removeRecords(of: Set(partitions))
            lock.withLock {
                if cooperative { assignment.subtract(partitions) } else { assignment.removeAll() }
                rebalanceGeneration += 1
            }
            Self.unassign(rk, list, cooperative: cooperative, logger: logger)

        default:
            logger.error("rebalance error: \(String(cString: rd_kafka_err2str(err)))")
            let (revoked, handler) = lock.withLock { () -> ([TopicPartition], RebalanceHandler?) in
                defer {
                    assignment.removeAll()
                    rebalanceGeneration += 1
                }
                return (Array(assignment), rebalanceHandler)
            }
            if !revoked.isEmpty { handler?(.revoked(revoked, lost: true)) }
            buffer.removeRecords(of: Set(revoked))
            rd_kafka_assign(rk, nil)
        }
    }

    /// Starts each partition of an assignment at its committed offset.
    private static func setOffsets(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
                                   _ committed: [TopicPartition: TopicPartitionOffset]) {
        let count = Int(list.pointee.cnt)
        guard count > 0, let elems = list.pointee.elems else { return }
        for i in 0..<count {
            let tp = TopicPartition(String(cString: elems[i].topic), elems[i].partition)
            if let offset = committed[tp]?.offset { elems[i].offset = offset }
        }
    }

    /// What librdkafka must be told when no consumer object is there to decide.
    static func applyDefaultRebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t,
                                      _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        if err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            assign(rk, list, cooperative: cooperative, logger: nil)
        } else if err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
            unassign(rk, list, cooperative: cooperative, logger: nil)
        } else {
            rd_kafka_assign(rk, nil)
        }
    }

    private static func assign(_ rk: OpaquePointer, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
                               cooperative: Bool, logger: Logger?) {
        if cooperative {
            if let error = rd_kafka_incremental_assign(rk, list) {
                logger?.error("incremental assign: \(String(cString: rd_kafka_error_string(error)))")
                rd_kafka_error_destroy(error)
            }
        } else {
            let err = rd_kafka_assign(rk, list)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger?.error("assign: \(String(cString: rd_kafka_err2str(err)))")
            }
        }
    }

    private static func unassign(_ rk: OpaquePointer, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
                                 cooperative: Bool, logger: Logger?) {
        if cooperative {
            if let error = rd_kafka_incremental_unassign(rk, list) {
                logger?.error("incremental unassign: \(String(cString: rd_kafka_error_string(error)))")
                rd_kafka_error_destroy(error)
            }
        } else {
            let err = rd_kafka_assign(rk, nil)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger?.error("unassign: \(String(cString: rd_kafka_err2str(err)))")
            }
        }
    }
}
