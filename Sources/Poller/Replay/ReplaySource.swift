import PollerCore

/// The topic a replay copies from.
public enum ReplaySource: String, Sendable, Hashable, CaseIterable {
    /// Dead letters (`dead-letter.schema.json`): the original record's key and value go back.
    case deadLetters = "dead-letters"
    /// Failures (`failure.schema.json`) of a retryable reason: a task event rebuilt from the failure goes back.
    case failures

    /// The failure reasons worth polling again once their cause is fixed, while the task's
    /// result window is open: the provider still holds the task. The others are final
    /// (`task_error`: the provider cannot solve it; `task_not_found`: it dropped the task;
    /// `expired`: the window closed).
    public static let retryableFailures: Set<FailureReason> = [.transientErrors, .accountError, .missingClientKey, .pollsExhausted]

    /// The reason codes `--reason` may name for this source.
    public var reasonCodes: [String] {
        switch self {
        case .deadLetters: return DeadLetterReason.Code.allCases.map(\.rawValue)
        case .failures: return FailureReason.allCases.filter(Self.retryableFailures.contains).map(\.rawValue)
        }
    }
}
