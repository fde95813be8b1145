import TaskModel
/// Why a task ended without a solution: the closed set of `failure.schema.json`'s `reason`.
public enum FailureReason: String, CaseIterable, Hashable, Sendable {
    /// The provider reported that the task cannot succeed (unsolvable, unsupported,
    /// bad parameters, or an unknown error code); `errorCode` has the provider's code.
    case taskError = "task_error"
    /// The provider does not know the task id (ERROR_TASKID_INVALID): wrong id, or
    /// the provider already dropped it.
    case taskNotFound = "task_not_found"
    /// The account key is unusable (ERROR_KEY_DOES_NOT_EXIST, ERROR_KEY_BANNED,
    /// ERROR_ZERO_BALANCE), reported for this task or for another task of the same key.
    case accountError = "account_error"
    /// No key to call with: the event has none and none is configured.
    case missingClientKey = "missing_client_key"
    /// The deadline (creation + window - margin) passed without a result, including
    /// tasks that arrived already past it (no call was made then) and tasks whose
    /// deadline passed while calls were paused by ERROR_IP_BANNED (then `errorCode`
    /// is ERROR_IP_BANNED).
    case expired = "expired"
    /// The per-task poll cap was reached while the task was still processing.
    case pollsExhausted = "polls_exhausted"
    /// Gave up after too many consecutive transient errors (HTTP 5xx/429, timeouts,
    /// overload codes) for this task.
    case transientErrors = "transient_errors"
}
