/// How a failed call must be handled (codes map here through `ErrorCodeClass`).
public enum FailureClass: Sendable, Hashable {
    /// Terminal for this task only (unsolvable, unsupported, unknown code).
    case task
    /// Terminal for this task: the provider does not know its id (`ErrorCodeClass.unknownTask`).
    case unknownTask
    /// Terminal for every task of the key: stop calling with that key.
    case account
    /// The IP is banned: stop all calls for `ProviderProfile.ipBanPause`.
    case ban
    /// Try again later. `retryAfter` is the provider's hint (HTTP `Retry-After`,
    /// or the profile's per-task minimum interval for a task rate limit), if any.
    case transient(TransientReason, retryAfter: Duration?)
}

/// Why a transient failure happened.
public enum TransientReason: Sendable, Hashable {
    /// An HTTP status other than 2xx (429, 5xx, or an unexpected one).
    case httpStatus(Int)
    /// Connect, read or overall request timeout.
    case timeout
    /// Connection refused, reset or closed before a full response.
    case connection
    /// A 2xx response whose body is not a usable provider response
    /// (non-JSON, truncated, missing status).
    case badBody
    /// The provider reported overload (`ERROR_SERVICE_UNAVALIABLE`,
    /// `ERROR_NO_SLOT_AVAILABLE`, `ERROR_INTERNAL_SERVER_ERROR`, ...): back off globally.
    case providerBusy
    /// The provider says this task is polled too often (`ERROR_TOO_MUCH_REQUESTS`):
    /// back off this task.
    case taskRateLimited
}
