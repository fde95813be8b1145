import TaskModel
/// The identity and echo fields shared by `solution` and `failure` messages.
/// Deliberately has no clientKey.
public struct TaskContext: Hashable, Sendable {
    public var taskId: String
    /// Creation time the deadline was measured from (event `createdAt` or record timestamp).
    public var createdAt: Timestamp
    /// Provider profile name (e.g. `ez-captcha`).
    public var provider: String
    public var taskType: String?
    public var correlationId: String?
    public var metadata: RawJSON?
    public var source: MessageSource
    /// The input record's trace context, carried on to the output's headers.
    public var trace: TraceContext?

    public init(
        taskId: String, createdAt: Timestamp, provider: String, taskType: String? = nil,
        correlationId: String? = nil, metadata: RawJSON? = nil, source: MessageSource
    ) {
        self.taskId = taskId
        self.createdAt = createdAt
        self.provider = provider
        self.taskType = taskType
        self.correlationId = correlationId
        self.metadata = metadata
        self.source = source
    }

    /// From a decoded event: the event's provider wins over `defaultProvider`,
    /// its `createdAt` over the record timestamp.
    public init(event: TaskEvent, source: MessageSource, recordTimestamp: Timestamp, defaultProvider: String) {
        self.init(
            taskId: event.taskId, createdAt: event.createdAt ?? recordTimestamp,
            provider: event.provider ?? defaultProvider, taskType: event.taskType,
            correlationId: event.correlationId, metadata: event.metadata, source: source)
    }

    func writeIdentity(into writer: inout JSONWriter, status: StaticString) {
        writer.string("taskId", taskId)
        writer.string("status", status.description)
    }

    func writeEcho(into writer: inout JSONWriter) {
        writer.timestamp("createdAt", createdAt)
        writer.string("provider", provider)
        writer.optionalString("taskType", taskType)
        writer.optionalString("correlationId", correlationId)
        if let metadata { writer.raw("metadata", metadata) }
        source.write(into: &writer)
    }
}
