import NIOConcurrencyHelpers

/// What a pipeline did, counted as it happens (for the demo, logs and metrics).
public final class PipelineCounters: Sendable {
    public struct Snapshot: Sendable, Hashable {
        public var recordsConsumed = 0
        public var polls = 0
        public var solved = 0
        public var failed: [FailureReason: Int] = [:]
        public var deadLetters: [DeadLetterReason.Code: Int] = [:]
        public var acknowledged = 0
        /// Records skipped because the last owner of their partition had finished them.
        public var skippedFinished = 0

        public var failedTotal: Int { failed.values.reduce(0, +) }
        public var deadLetterTotal: Int { deadLetters.values.reduce(0, +) }
        /// Outputs handed to the producer.
        public var outputs: Int { solved + failedTotal + deadLetterTotal }
    }

    private let value = NIOLockedValueBox(Snapshot())

    public var snapshot: Snapshot { value.withLockedValue { $0 } }

    private func update(_ body: (inout Snapshot) -> Void) {
        value.withLockedValue { body(&$0) }
    }

    func consumed(_ n: Int) { update { $0.recordsConsumed += n } }
    func polled(_ n: Int) { update { $0.polls += n } }
    func solved() { update { $0.solved += 1 } }
    func failed(_ reason: FailureReason) { update { $0.failed[reason, default: 0] += 1 } }
    func deadLettered(_ code: DeadLetterReason.Code) { update { $0.deadLetters[code, default: 0] += 1 } }
    func acknowledged() { update { $0.acknowledged += 1 } }
    func skippedFinished() { update { $0.skippedFinished += 1 } }
}
