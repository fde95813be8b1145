extension FailureClass {
    /// Stable lower-case name for messages and metrics: `task` (also for an unknown
    /// task id: both end the task alone), `account`, `ban`, `transient`.
    public var name: String {
        switch self {
        case .task, .unknownTask: return "task"
        case .account: return "account"
        case .ban: return "ban"
        case .transient: return "transient"
        }
    }
}

extension TransientReason {
    /// Stable name for metrics: `http_<status>`, `timeout`, `connection`, `bad_body`,
    /// `provider_busy`, `task_rate_limited`.
    public var name: String {
        switch self {
        case .httpStatus(let status): return "http_\(status)"
        case .timeout: return "timeout"
        case .connection: return "connection"
        case .badBody: return "bad_body"
        case .providerBusy: return "provider_busy"
        case .taskRateLimited: return "task_rate_limited"
        }
    }
}
