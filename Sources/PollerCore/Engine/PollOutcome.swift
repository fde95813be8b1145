import TaskModel
/// The classified answer of one getTaskResult call, as the engine needs it.
/// The TaskAPI target's classification maps onto this at wiring time.
public enum PollOutcome: Hashable, Sendable {
    /// `status: processing` (or capsolver's `idle`).
    case processing
    /// `status: ready`; the `solution` object's raw JSON.
    case ready(solution: RawJSON, receipt: SolveReceipt = SolveReceipt())
    /// 429, 5xx, timeout, connection error, non-JSON body, ERROR_SERVICE_UNAVALIABLE,
    /// ERROR_INTERNAL_SERVER_ERROR, ERROR_NO_SLOT_AVAILABLE. `retryAfter` (HTTP
    /// `Retry-After`, or the provider's per-task minimum for a task rate limit) is a
    /// floor under the backoff: the task is not polled again before it.
    case transient(retryAfter: Duration?)
    /// The task cannot succeed (unsolvable, unsupported, bad parameters, unknown code).
    case taskFailed(ProviderError)
    /// ERROR_TASKID_INVALID.
    case taskNotFound(ProviderError)
    /// ERROR_KEY_DOES_NOT_EXIST, ERROR_KEY_BANNED, ERROR_ZERO_BALANCE.
    case accountError(ProviderError)
    /// ERROR_IP_BANNED: every call pauses for the ban duration (`--ban-pause`).
    case ipBanned
}

/// The provider's error fields, echoed into failure messages.
public struct ProviderError: Hashable, Sendable {
    public var errorId: Int?
    public var errorCode: String
    public var errorDescription: String?

    public init(errorId: Int? = nil, errorCode: String, errorDescription: String? = nil) {
        self.errorId = errorId
        self.errorCode = errorCode
        self.errorDescription = errorDescription
    }
}
