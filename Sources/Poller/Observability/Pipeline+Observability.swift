import Foundation
import Kafka

/// What the observability server asks of a pipeline.
public protocol ObservabilitySource: Sendable {
    /// The Prometheus text exposition (state gauges sampled now).
    func metricsExposition() -> [UInt8]
    /// Liveness and readiness now.
    func health() -> PipelineHealth
}

extension Pipeline: ObservabilitySource {
    public func metricsExposition() -> [UInt8] {
        _ = refreshMetrics()
        return metrics.exposition()
    }

    public func health() -> PipelineHealth {
        refreshMetrics()
    }

    /// Samples the engine's state into the gauges and returns the health it implies.
    /// While brokers are reported down it also starts a probe (one at a time): a
    /// committed-offsets request to the group coordinator; an answer clears the flag.
    @discardableResult
    public func refreshMetrics() -> PipelineHealth {
        let now = WallClock.now()
        let state = withEngine { engine in
            (inFlight: engine.inFlightCount, held: engine.heldInputCount, limit: engine.inFlightLimit, calls: engine.callsInProgress,
             paused: engine.isFetchingPaused,
             bannedUntil: engine.bannedUntil.flatMap { $0 > now ? $0 : nil },
             deadKeys: engine.disabledKeyCount, slowdown: engine.callSlowdown,
             callsPerSecond: engine.callsPerSecond, lateness: engine.pollLateness)
        }
        let partitions = assignedPartitions
        let assigned = partitions.count
        var lifecycle = metrics.currentLifecycle
        if stopRequested.isSet { lifecycle = .stopping }
        let kafka = metrics.kafkaState
        let health = PipelineHealth(lifecycle: lifecycle, assignedPartitions: assigned, kafka: kafka, bannedUntil: state.bannedUntil,
                                    stalls: metrics.stalls(), stallThreshold: configuration.stallThreshold)

        metrics.tasksInFlight.record(state.inFlight)
        metrics.inputHeld.record(state.held)
        metrics.inFlightLimit.record(state.limit)
        metrics.callsInProgress.record(state.calls)
        metrics.inputPaused.record(state.paused || !accountsWithoutBalance.isEmpty ? 1 : 0)
        // What the consumer has paused, not what the engine wants: the two must agree.
        metrics.pausedPartitions.record(partitions.filter { consumer.isPaused($0) }.count)
        metrics.assignedPartitions.record(assigned)
        metrics.ipBanActive.record(state.bannedUntil == nil ? 0 : 1)
        metrics.ipBanRemaining.record(state.bannedUntil.map { Double(($0 - now).milliseconds) / 1_000 } ?? 0)
        metrics.accountsDisabled.record(state.deadKeys)
        metrics.pollSlowdown.record(state.slowdown)
        metrics.sampleCallBudget(callsStarted: snapshot.polls, allowedPerSecond: state.callsPerSecond, lateness: state.lateness)
        metrics.brokersDown.record(kafka.brokersDown ? 1 : 0)
        metrics.ready.record(health.isReady ? 1 : 0)

        if kafka.brokersDown, lifecycle == .running, metrics.beginProbe() {
            let probe = TopicPartition(configuration.topics.input, 0)
            Task { [consumer, metrics] in
                let reached = await consumer.coordinatorReachable(probing: probe, timeoutMs: 2_000)
                metrics.endProbe(reached: reached)
            }
        }
        return health
    }

    /// Reads the broker-side lag of the assigned partitions every `interval` until cancelled.
    func brokerLagLoop(every interval: Duration) async {
        while !Task.isCancelled {
            let partitions = Array(assignedPartitions)
            if !partitions.isEmpty, let lag = try? await consumer.brokerLag(for: partitions, timeoutMs: 5_000) {
                metrics.brokerLag(lag, assigned: assignedPartitions)
            }
            try? await Task.sleep(for: interval)
        }
    }
}
