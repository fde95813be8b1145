import TaskModel

extension PollOutcome {
    /// Codes that mean the provider does not know the task (unknown id, or its window closed).
    static let taskNotFoundCodes: Set<String> = ["ERROR_TASKID_INVALID", "ERROR_NO_SUCH_CAPCHA_ID", "ERROR_WRONG_CAPTCHA_ID"]

    /// The engine's view of a classified getTaskResult answer.
    public init(_ outcome: TaskOutcome) {
        switch outcome {
        case .processing:
            self = .processing
        case .ready(let solution):
            self = .ready(solution: solution)
        case .failed(.transient(_, let retryAfter), _, _, _):
            self = .transient(retryAfter: retryAfter)
        case .failed(.ban, _, _, _):
            self = .ipBanned
        case .failed(.account, let code, let description, let errorId):
            self = .accountError(ProviderError(errorId: errorId, errorCode: code, errorDescription: description))
        case .failed(.task, let code, let description, let errorId):
            let error = ProviderError(errorId: errorId, errorCode: code, errorDescription: description)
            self = Self.taskNotFoundCodes.contains(code) ? .taskNotFound(error) : .taskFailed(error)
        }
    }
}
