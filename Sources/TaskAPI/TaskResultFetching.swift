/// What the poller needs from a provider client. `TaskResultClient` is the
/// real one; tests of the engine can pass a scripted fake with no HTTP.
public protocol TaskResultFetching: Sendable {
    /// Polls one task once. Never throws: every failure is a classified outcome.
    func getTaskResult(taskId: String, clientKey: ClientKey) async -> TaskOutcome
}

extension TaskResultClient: TaskResultFetching {}
