/// The one classified result of a getTaskResult call. The client never
/// throws: every failure (HTTP, network, body, provider error) ends here.
public enum TaskOutcome: Sendable, Hashable {
    /// Not solved yet (`processing`, or capsolver's `idle`): poll again later.
    case processing
    /// Solved; `solution` is the provider's object, byte for byte; `receipt` what the
    /// answer said about the solve (cost, times), if anything.
    case ready(solution: RawJSON, receipt: SolveReceipt = SolveReceipt())
    /// Anything else. `code` is the provider's `errorCode` as sent, or one of
    /// `TaskOutcome.LocalCode` for failures that carry no provider code; `errorId`
    /// is the provider's non-zero `errorId` when the failure came from an API answer.
    case failed(FailureClass, code: String, description: String?, errorId: Int? = nil)

    /// Codes for failures that did not come from a provider `errorCode`.
    public enum LocalCode {
        /// `HTTP_<status>`, e.g. `HTTP_429`, `HTTP_503`.
        public static func http(_ status: Int) -> String { "HTTP_\(status)" }
        public static let timeout = "TIMEOUT"
        public static let connection = "CONNECTION_ERROR"
        public static let badBody = "BAD_BODY"
        /// `errorId` was non-zero but no `errorCode` was sent: `ERROR_ID_<n>`.
        public static func errorId(_ id: String) -> String { "ERROR_ID_\(id)" }
    }

    /// True when the task will not change any more by polling again
    /// (ready, or a task/account/ban failure).
    public var isTerminalForTask: Bool {
        switch self {
        case .processing: return false
        case .ready: return true
        case .failed(.transient, _, _, _): return false
        case .failed: return true
        }
    }

    /// The provider code or local code of a failure, nil otherwise.
    public var failureCode: String? {
        if case .failed(_, let code, _, _) = self { return code }
        return nil
    }
}
