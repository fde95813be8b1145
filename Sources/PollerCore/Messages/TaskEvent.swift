import TaskModel
/// An input record from the tasks topic, decoded and validated (`task-event.schema.json`).
public struct TaskEvent: Hashable, Sendable {
    /// Opaque task id; integers in the input are normalised to their decimal text.
    public var taskId: String
    /// Per-account key; nil means "use the configured key". Never written to any output.
    public var clientKey: ClientKey?
    /// Creation time; nil means "use the Kafka record timestamp".
    public var createdAt: Timestamp?
    public var taskType: String?
    public var provider: String?
    public var correlationId: String?
    /// The `metadata` object's JSON text as received (any clientKey in it redacted), echoed in outputs.
    public var metadata: RawJSON?
    /// `"callback": true`: the producer gave the provider a `callbackUrl` that reaches
    /// `ezpoll run`'s callback receiver; the task is polled on the safety schedule
    /// (`CallbackSchedule`) and at once on its callback. Default: false.
    public var expectsCallback: Bool

    public init(
        taskId: String, clientKey: ClientKey? = nil, createdAt: Timestamp? = nil, taskType: String? = nil,
        provider: String? = nil, correlationId: String? = nil, metadata: RawJSON? = nil, expectsCallback: Bool = false
    ) {
        self.expectsCallback = expectsCallback
        self.taskId = taskId
        self.clientKey = clientKey
        self.createdAt = createdAt
        self.taskType = taskType
        self.provider = provider
        self.correlationId = correlationId
        self.metadata = metadata
    }
}
