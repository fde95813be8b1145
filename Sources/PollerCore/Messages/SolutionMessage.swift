import TaskModel
/// A solved task (`solution.schema.json`), published to the solutions topic keyed by taskId.
public struct SolutionMessage: Hashable, Sendable {
    public var context: TaskContext
    /// The provider's `solution` object, verbatim.
    public var solution: RawJSON
    public var polls: Int
    public var resolvedAt: Timestamp
    /// When the solved token stops being usable (`resolvedAt` + the task type's lifetime),
    /// if its task type has a known lifetime.
    public var expiresAt: Timestamp?
    /// What the provider's answer said about the solve (cost, its own solve time,
    /// solveCount), when it said anything.
    public var receipt: SolveReceipt?

    public init(context: TaskContext, solution: RawJSON, polls: Int, resolvedAt: Timestamp, expiresAt: Timestamp? = nil,
                receipt: SolveReceipt? = nil) {
        self.context = context
        self.solution = solution
        self.polls = polls
        self.resolvedAt = resolvedAt
        self.expiresAt = expiresAt
        self.receipt = receipt
    }

    public static let schema = MessageSchema.solution

    public func jsonBytes() -> [UInt8] {
        var w = JSONWriter(capacity: 256 + solution.bytes.count + (context.metadata?.bytes.count ?? 0))
        context.writeIdentity(into: &w, status: "ready")
        w.raw("solution", solution)
        w.integer("polls", polls)
        w.timestamp("resolvedAt", resolvedAt)
        if let expiresAt { w.timestamp("expiresAt", expiresAt) }
        if let receipt {
            w.optionalString("cost", receipt.cost)
            if let solveTime = receipt.providerSolveTime { w.integer("providerSolveSeconds", Int(solveTime.components.seconds)) }
            if let count = receipt.solveCount { w.integer("solveCount", count) }
        }
        context.writeEcho(into: &w)
        return w.finish()
    }
}
