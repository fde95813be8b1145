import TaskModel

extension PollOutcome {
    /// The engine's view of a classified getTaskResult answer.
    public init(_ outcome: TaskOutcome) {
        switch outcome {
        case .processing:
            self = .processing
        case .ready(let solution, let receipt):
            self = .ready(solution: solution, receipt: receipt)
        case .failed(.transient(_, let retryAfter), _, _, _):
            self = .transient(retryAfter: retryAfter)
        case .failed(.ban, _, _, _):
            self = .ipBanned
        case .failed(.account, let code, let description, let errorId):
            self = .accountError(ProviderError(errorId: errorId, errorCode: code, errorDescription: description))
        case .failed(.task, let code, let description, let errorId):
            self = .taskFailed(ProviderError(errorId: errorId, errorCode: code, errorDescription: description))
        case .failed(.unknownTask, let code, let description, let errorId):
            self = .taskNotFound(ProviderError(errorId: errorId, errorCode: code, errorDescription: description))
        }
    }
}
