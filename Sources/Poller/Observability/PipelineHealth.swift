import Foundation
import TaskAPI

/// Liveness and readiness of a pipeline, from a snapshot of its state (no I/O, so the
/// rules are tested on values):
///
/// - live: the process serves and no fatal Kafka client error happened;
/// - ready: the pipeline runs (its consumer is assigned partitions or waiting for an
///   assignment), a broker is reachable, calls are not paused by an IP ban, and no
///   partition's committed offset has stood still past the stall threshold while
///   records wait above it.
public struct PipelineHealth: Sendable, Hashable {
    public enum Lifecycle: String, Sendable, Hashable {
        /// `run()` has not subscribed yet.
        case starting
        /// Subscribed: assigned partitions or waiting for an assignment.
        case running
        /// `shutdown()` was requested, or `run()` returned.
        case stopping
    }

    public var lifecycle: Lifecycle
    public var assignedPartitions: Int
    public var kafka: PipelineMetrics.KafkaState
    /// When the current IP-ban pause ends; nil when not banned.
    public var bannedUntil: Timestamp?
    /// Partitions whose committed offset has not advanced past `stallThreshold` while
    /// records wait above it.
    public var stalled: [PipelineMetrics.Stall]
    public var stallThreshold: Duration?

    public init(lifecycle: Lifecycle, assignedPartitions: Int, kafka: PipelineMetrics.KafkaState, bannedUntil: Timestamp?,
                stalls: [PipelineMetrics.Stall] = [], stallThreshold: Duration? = nil) {
        self.lifecycle = lifecycle
        self.assignedPartitions = assignedPartitions
        self.kafka = kafka
        self.bannedUntil = bannedUntil
        self.stallThreshold = stallThreshold
        stalled = stallThreshold.map { threshold in stalls.filter { $0.duration > threshold } } ?? []
    }

    public var isLive: Bool { kafka.fatalError == nil }

    /// Why the pipeline is not ready; empty when it is.
    public var notReadyReasons: [String] {
        var reasons: [String] = []
        switch lifecycle {
        case .starting: reasons.append("not subscribed yet")
        case .stopping: reasons.append("shutting down")
        case .running: break
        }
        if let fatal = kafka.fatalError { reasons.append("fatal Kafka error: \(fatal)") }
        if kafka.brokersDown { reasons.append("all brokers down") }
        if let bannedUntil { reasons.append("ERROR_IP_BANNED: calls paused until \(bannedUntil)") }
        for stall in stalled {
            reasons.append("committed offset \(stall.committedOffset) of \(stall.partition.topic)[\(stall.partition.partition)] has not advanced for "
                           + "\(stall.duration.components.seconds) s while records wait (stall threshold \(stallThreshold?.components.seconds ?? 0) s)")
        }
        return reasons
    }

    public var isReady: Bool { notReadyReasons.isEmpty }

    /// `assigned` or `waiting` (for an assignment).
    public var assignment: String { assignedPartitions > 0 ? "assigned" : "waiting" }

    /// The body of `/health/ready` (and, with `liveness`, of `/health/live`).
    public func json(liveness: Bool = false) -> String {
        var fields: [(String, String)] = []
        if liveness {
            fields.append(("status", quoted(isLive ? "live" : "failed")))
        } else {
            fields.append(("status", quoted(isReady ? "ready" : "not_ready")))
            fields.append(("reasons", "[" + notReadyReasons.map(quoted).joined(separator: ",") + "]"))
        }
        fields.append(("lifecycle", quoted(lifecycle.rawValue)))
        fields.append(("assignment", quoted(assignment)))
        fields.append(("assignedPartitions", String(assignedPartitions)))
        fields.append(("brokersDown", String(kafka.brokersDown)))
        fields.append(("banned", String(bannedUntil != nil)))
        if let bannedUntil { fields.append(("bannedUntil", quoted(bannedUntil.description))) }
        fields.append(("stalledPartitions", String(stalled.count)))
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n"
    }

    private func quoted(_ text: String) -> String { JSONEscaping.quoted(text) }
}
