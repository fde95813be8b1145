/// What the poller needs from a provider client. `TaskResultClient` is the
/// real one; tests of the engine can pass a scripted fake with no HTTP.
public protocol TaskResultFetching: Sendable {
    /// Polls one task once. Never throws: every failure is a classified outcome.
    func getTaskResult(taskId: String, clientKey: ClientKey) async -> TaskOutcome
    /// Starts polling each task once; each completion runs exactly once, on any thread.
    /// The pipeline's path: a batch per dispatch, no task or hop per call.
    func start(_ calls: [TaskResultCall])
}

/// One getTaskResult call and what to do with its outcome.
public struct TaskResultCall: Sendable {
    public var taskId: String
    public var clientKey: ClientKey
    public var completion: @Sendable (TaskOutcome) -> Void

    public init(taskId: String, clientKey: ClientKey, completion: @escaping @Sendable (TaskOutcome) -> Void) {
        self.taskId = taskId
        self.clientKey = clientKey
        self.completion = completion
    }
}

extension TaskResultFetching {
    /// A task per call over `getTaskResult`: for clients with only the async form.
    public func start(_ calls: [TaskResultCall]) {
        for call in calls {
            Task { call.completion(await getTaskResult(taskId: call.taskId, clientKey: call.clientKey)) }
        }
    }
}

extension TaskResultClient: TaskResultFetching {}
