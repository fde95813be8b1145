import Foundation

extension KafkaConsumer {
    /// The polling thread: serves librdkafka (records, rebalances, errors) until a
    /// close is requested, then commits, closes the consumer and ends `batches`.
    func pollLoop() {
        let poller = RDKafkaRecordPoller(client: client, maxBatch: configuration.maxBatchSize)
        while !buffer.isCloseRequested {
            buffer.waitForRoom(timeout: 0.1)
            if buffer.isCloseRequested { break }
            let generation = state.withLockedValue { $0.rebalanceGeneration }
            guard var records = poller.poll(timeoutMs: 100) else { continue }
            let (currentGeneration, owned) = state.withLockedValue { ($0.rebalanceGeneration, $0.assignment) }
            if currentGeneration != generation {
                // A revoke ran while these were collected: drop records of partitions
                // this member no longer owns.
                records.removeAll { !owned.contains($0.topicPartition) }
            }
            if !records.isEmpty { buffer.push(records) }
        }
        awaitFirstAssignmentBeforeClose()
        shutDownConsumer()
    }

    /// librdkafka 2.0.2 aborts (`assignor_state` assertion) when a cooperative-sticky
    /// consumer is closed after the group answered its JoinGroup, so an assignor was
    /// chosen, but before the first assignment gave that assignor its state (librdkafka
    /// #4312, fixed in 2.2.1). Such a member keeps serving the group until the
    /// assignment arrives, for at most the session timeout; records fetched meanwhile are
    /// dropped unstored, so they stay in the log for the next owner. A member that never
    /// had a JoinGroup answer (no member id) has no assignor and closes at once.
    private func awaitFirstAssignmentBeforeClose() {
        let strategy = configuration.properties["partition.assignment.strategy"] ?? configuration.assignmentStrategy
        let hasBeenAssigned = { self.state.withLockedValue { $0.hasBeenAssigned } }
        guard strategy.contains("cooperative-sticky"), !hasBeenAssigned(), client.consumer.hasMemberID else { return }
        logger.info("closing before the first assignment: waiting for it first")
        let sessionTimeoutMs = configuration.effectiveSessionTimeoutMs
        let deadline = Date().addingTimeInterval(Double(sessionTimeoutMs) / 1000)
        while !hasBeenAssigned() && Date() < deadline {
            client.consumer.pollDiscardingRecords(timeoutMs: 100)
        }
        if !hasBeenAssigned() {
            logger.warning("no assignment within the session timeout; closing anyway")
        }
    }

    private func shutDownConsumer() {
        if configuration.autoCommitIntervalMs != nil, let failure = client.consumer.commitStored() {
            client.context.logger.warning("final commit: \(failure)")
        }
        // Serves the final revoke through the rebalance callback and leaves the group.
        if let failure = client.consumer.close() {
            client.context.logger.warning("consumer close: \(failure)")
        }
        finish(waking: state.withLockedValue { $0.pollingFinished() })
    }
}
