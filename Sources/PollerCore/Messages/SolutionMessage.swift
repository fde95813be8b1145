import TaskModel
/// A solved task (`solution.schema.json`), published to the solutions topic keyed by taskId.
public struct SolutionMessage: Hashable, Sendable {
    public var context: TaskContext
    /// The provider's `solution` object, verbatim.
    public var solution: RawJSON
    public var polls: Int
    public var resolvedAt: Timestamp

    public init(context: TaskContext, solution: RawJSON, polls: Int, resolvedAt: Timestamp) {
        self.context = context
        self.solution = solution
        self.polls = polls
        self.resolvedAt = resolvedAt
    }

    public static let schema = MessageSchema.solution

    public func jsonBytes() -> [UInt8] {
        var w = JSONWriter(capacity: 256 + solution.bytes.count + (context.metadata?.bytes.count ?? 0))
        context.writeIdentity(into: &w, status: "ready")
        w.raw("solution", solution)
        w.integer("polls", polls)
        w.timestamp("resolvedAt", resolvedAt)
        context.writeEcho(into: &w)
        return w.finish()
    }
}
