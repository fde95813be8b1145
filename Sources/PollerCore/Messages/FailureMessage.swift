import TaskModel
/// A task that ended without a solution (`failure.schema.json`), keyed by taskId.
public struct FailureMessage: Hashable, Sendable {
    public var context: TaskContext
    public var reason: FailureReason
    /// The provider's error fields, when the failure came from an API answer.
    public var errorId: Int?
    public var errorCode: String?
    public var errorDescription: String?
    public var polls: Int
    public var resolvedAt: Timestamp

    public init(
        context: TaskContext, reason: FailureReason, errorId: Int? = nil, errorCode: String? = nil,
        errorDescription: String? = nil, polls: Int, resolvedAt: Timestamp
    ) {
        self.context = context
        self.reason = reason
        self.errorId = errorId
        self.errorCode = errorCode
        self.errorDescription = errorDescription
        self.polls = polls
        self.resolvedAt = resolvedAt
    }

    public static let schema = MessageSchema.failure

    public func jsonBytes() -> [UInt8] {
        var w = JSONWriter(capacity: 320 + (context.metadata?.bytes.count ?? 0))
        context.writeIdentity(into: &w, status: "failed")
        w.string("reason", reason.rawValue)
        if let errorId { w.integer("errorId", errorId) }
        if let errorCode, !errorCode.isEmpty { w.string("errorCode", errorCode) }
        if let errorDescription, !errorDescription.isEmpty {
            // Provider text is echoed; a key pasted into it by the provider is still redacted.
            let redacted = ClientKeyRedactor.redact(Array(errorDescription.utf8))
            w.key("errorDescription")
            redacted.withUnsafeBytes { w.appendStringBytes($0) }
        }
        w.integer("polls", polls)
        w.timestamp("resolvedAt", resolvedAt)
        context.writeEcho(into: &w)
        return w.finish()
    }
}
