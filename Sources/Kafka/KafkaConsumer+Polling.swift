import CRdKafka
import Foundation

extension KafkaConsumer {
    /// The polling thread: serves librdkafka (records, rebalances, errors) until a
    /// close is requested, then commits, closes the consumer and ends `batches`.
    func pollLoop() {
        let maxBatch = max(1, configuration.maxBatchSize)
        let messages = UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>.allocate(capacity: maxBatch)
        defer { messages.deallocate() }
        let rk = clientHandle

        while !buffer.isCloseRequested {
            buffer.waitForRoom(timeout: 0.1)
            if buffer.isCloseRequested { break }
            let generation = currentRebalanceGeneration
            // Block for the first message (or an event such as a rebalance)…
            guard let first = rd_kafka_consumer_poll(rk, 100) else { continue }
            var records: [KafkaRecord] = []
            records.reserveCapacity(min(maxBatch, 256))
            collect(first, into: &records)
            // …then take whatever else is already queued, without waiting.
            if maxBatch > 1 {
                let count = rd_kafka_consume_batch_queue(consumerQueue, 0, messages, maxBatch - 1)
                if count > 0 {
                    for i in 0..<count {
                        if let message = messages[i] { collect(message, into: &records) }
                    }
                }
            }
            if currentRebalanceGeneration != generation {
                // A revoke ran while these were collected: drop records of partitions
                // this member no longer owns.
                let owned = assignedPartitions
                records.removeAll { !owned.contains($0.topicPartition) }
            }
            if !records.isEmpty { buffer.push(records) }
        }
        awaitFirstAssignmentBeforeClose(rk)
        shutDownConsumer(rk)
    }

    /// librdkafka 2.0.2 aborts (`assignor_state` assertion) when a cooperative-sticky
    /// consumer is closed after the group answered its JoinGroup, so an assignor was
    /// chosen, but before the first assignment gave that assignor its state (librdkafka
    /// #4312, fixed in 2.2.1). Such a member keeps serving the group until the
    /// assignment arrives, for at most the session timeout; records fetched meanwhile are
    /// dropped unstored, so they stay in the log for the next owner. A member that never
    /// had a JoinGroup answer (no member id) has no assignor and closes at once.
    private func awaitFirstAssignmentBeforeClose(_ rk: OpaquePointer) {
        let strategy = configuration.properties["partition.assignment.strategy"] ?? configuration.assignmentStrategy
        guard strategy.contains("cooperative-sticky"), !lock.withLock({ hasBeenAssigned }), Self.hasMemberID(rk) else { return }
        logger.info("closing before the first assignment: waiting for it first")
        let sessionTimeoutMs = configuration.effectiveSessionTimeoutMs
        let deadline = Date().addingTimeInterval(Double(sessionTimeoutMs) / 1000)
        while !lock.withLock({ hasBeenAssigned }) && Date() < deadline {
            if let message = rd_kafka_consumer_poll(rk, 100) { rd_kafka_message_destroy(message) }
        }
        if !lock.withLock({ hasBeenAssigned }) {
            logger.warning("no assignment within the session timeout; closing anyway")
        }
    }

    private static func hasMemberID(_ rk: OpaquePointer) -> Bool {
        guard let id = rd_kafka_memberid(rk) else { return false }
        defer { rd_kafka_mem_free(rk, id) }
        return id.pointee != 0
    }

    /// Converts one message to a record (or reports its error) and destroys it.
    private func collect(_ message: UnsafeMutablePointer<rd_kafka_message_t>, into records: inout [KafkaRecord]) {
        defer { rd_kafka_message_destroy(message) }
        let m = message.pointee
        guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            if m.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
                clientContext.error(client: nil, err: m.err, reason: "consume \(topic)[\(m.partition)]: \(String(cString: rd_kafka_err2str(m.err)))")
            }
            return
        }
        let topic = String(cString: rd_kafka_topic_name(m.rkt))
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        records.append(KafkaRecord(topic: topic, partition: m.partition, offset: m.offset,
                                   key: key, value: value, headers: Self.headers(of: message),
                                   timestampMs: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp))
    }

    private static func headers(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return [] }
        var result: [KafkaHeader] = []
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(hdrs, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            let headerName = name.map { String(cString: $0) } ?? ""
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
            result.append(KafkaHeader(name: headerName, value: bytes))
            index += 1
        }
        return result
    }

    private func shutDownConsumer(_ rk: OpaquePointer) {
        if configuration.autoCommitIntervalMs != nil {
            let commitErr = rd_kafka_commit(rk, nil, 0)
            if commitErr != RD_KAFKA_RESP_ERR_NO_ERROR && commitErr != RD_KAFKA_RESP_ERR__NO_OFFSET {
                clientContext.logger.warning("final commit: \(String(cString: rd_kafka_err2str(commitErr)))")
            }
        }
        // Serves the final revoke through the rebalance callback and leaves the group.
        let closeErr = rd_kafka_consumer_close(rk)
        if closeErr != RD_KAFKA_RESP_ERR_NO_ERROR {
            clientContext.logger.warning("consumer close: \(String(cString: rd_kafka_err2str(closeErr)))")
        }
        buffer.finish()
        markClosed()
    }
}
