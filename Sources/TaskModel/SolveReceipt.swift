/// What a ready answer says about the solve itself, when the provider sends it
/// (anti-captcha and capmonster do; ez-captcha and capsolver mostly do not): the
/// price, when the provider took and finished the task, and how many workers tried.
public struct SolveReceipt: Sendable, Hashable {
    /// The price as the provider wrote it (`"0.001500"`), kept as decimal text so no
    /// digit is lost; nil when absent or not a plain decimal.
    public var cost: String?
    /// Unix seconds when the provider registered the task and when it finished it.
    public var createTime: Int64?
    public var endTime: Int64?
    /// How many workers solved it (anti-captcha's `solveCount`).
    public var solveCount: Int?

    public init(cost: String? = nil, createTime: Int64? = nil, endTime: Int64? = nil, solveCount: Int? = nil) {
        self.cost = cost
        self.createTime = createTime
        self.endTime = endTime
        self.solveCount = solveCount
    }

    /// Nothing known.
    public var isEmpty: Bool { cost == nil && createTime == nil && endTime == nil && solveCount == nil }

    /// The provider's own solve time, `endTime - createTime`, when both are known and in order.
    public var providerSolveTime: Duration? {
        guard let createTime, let endTime, endTime >= createTime, createTime > 0 else { return nil }
        return .seconds(endTime - createTime)
    }

    /// The cost as a number, for counters (the text stays the record's value).
    public var costValue: Double? { cost.flatMap(Double.init) }

    /// True for a plain non-negative decimal: digits with at most one point.
    static func isDecimal(_ text: String) -> Bool {
        var points = 0
        var digits = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") { points += 1 } else if byte >= 48 && byte <= 57 { digits += 1 } else { return false }
        }
        return digits > 0 && points <= 1 && text.utf8.count <= 32
    }
}
