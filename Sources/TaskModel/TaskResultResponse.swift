/// A decoded getTaskResult body, tolerant of every shape providers send:
/// `errorId` as any integer (or a numeric string), `errorCode` and
/// `errorDescription` null/empty/absent, `status` processing/idle/ready,
/// `taskId` string or large integer, unknown extra fields ignored, and
/// `solution` kept verbatim.
public struct TaskResultResponse: Sendable, Hashable {
    public enum Status: Sendable, Hashable {
        case processing
        case ready
        /// Any other status text, kept as sent.
        case other(String)
    }

    /// 0 = no error. Kept as text so any integer width survives.
    public var errorId: String
    /// nil when null, empty or absent.
    public var errorCode: String?
    /// nil when null, empty or absent.
    public var errorDescription: String?
    /// nil when null or absent.
    public var status: Status?
    /// The `solution` value, byte-exact; nil when null or absent.
    public var solution: RawJSON?
    /// The echoed task id, if any (a string, or an integer's digits).
    public var taskId: String?
    /// `cost`, `createTime`, `endTime`, `solveCount`, when sent (malformed ones are left out).
    public var receipt = SolveReceipt()
    /// A getBalance answer's `balance` (a number, or a string of one).
    public var balance: Double?

    public init(errorId: String = "0", errorCode: String? = nil, errorDescription: String? = nil,
                status: Status? = nil, solution: RawJSON? = nil, taskId: String? = nil) {
        self.errorId = errorId
        self.errorCode = errorCode
        self.errorDescription = errorDescription
        self.status = status
        self.solution = solution
        self.taskId = taskId
    }

    /// True when the response reports an error (non-zero `errorId` or a non-empty `errorCode`).
    public var isError: Bool { !TaskResultResponse.isZero(errorId) || errorCode != nil }

    /// Decodes a body. Throws `TaskAPIError` (`.malformedJSON` or `.unexpectedShape`).
    public static func decode(_ bytes: [UInt8]) throws -> TaskResultResponse {
        let members = try JSONScanner.members(ofObject: bytes)
        var response = TaskResultResponse()
        // Last occurrence of a duplicated member wins.
        for member in members {
            switch member.key {
            case "errorId":
                switch member.kind {
                case .number:
                    response.errorId = try integerText(bytes, member.range, field: "errorId")
                case .string:
                    let text = try JSONScanner.decodeString(bytes, member.range).trimmingSpaces()
                    response.errorId = try integerText(Array(text.utf8), 0..<text.utf8.count, field: "errorId")
                case .null:
                    response.errorId = "0"
                default:
                    throw TaskAPIError(.unexpectedShape, "errorId is neither a number nor a string")
                }
            case "errorCode":
                response.errorCode = try optionalText(bytes, member, field: "errorCode")
            case "errorDescription":
                response.errorDescription = try optionalText(bytes, member, field: "errorDescription")
            case "status":
                guard let text = try optionalText(bytes, member, field: "status") else {
                    response.status = nil
                    continue
                }
                switch text.lowercased() {
                case "processing", "idle": response.status = .processing
                case "ready": response.status = .ready
                default: response.status = .other(text)
                }
            case "solution":
                response.solution = member.kind == .null
                    ? nil
                    : RawJSON(unchecked: Array(bytes[member.range]))
            case "taskId":
                switch member.kind {
                case .string: response.taskId = try JSONScanner.decodeString(bytes, member.range)
                case .number: response.taskId = String(decoding: bytes[member.range], as: UTF8.self)
                default: response.taskId = nil
                }
            case "cost":
                // A number or a string of one; anything else is not a price.
                let text = member.kind == .string ? try JSONScanner.decodeString(bytes, member.range)
                    : member.kind == .number ? String(decoding: bytes[member.range], as: UTF8.self) : ""
                response.receipt.cost = SolveReceipt.isDecimal(text) ? text : nil
            case "balance":
                let text = member.kind == .string ? try JSONScanner.decodeString(bytes, member.range)
                    : member.kind == .number ? String(decoding: bytes[member.range], as: UTF8.self) : ""
                response.balance = Double(text).flatMap { $0.isFinite ? $0 : nil }
            case "createTime":
                response.receipt.createTime = integer(bytes, member)
            case "endTime":
                response.receipt.endTime = integer(bytes, member)
            case "solveCount":
                response.receipt.solveCount = integer(bytes, member).flatMap { Int(exactly: $0) }
            default:
                continue // ip, ...
            }
        }
        return response
    }

    /// A non-negative integer, as a number or a string of digits (`"solveCount":"1"`), else
    /// nil: telemetry fields never fail a decode.
    private static func integer(_ bytes: [UInt8], _ member: JSONMember) -> Int64? {
        guard member.range.count <= 20 else { return nil }
        let text: String
        switch member.kind {
        case .number: text = String(decoding: bytes[member.range], as: UTF8.self)
        case .string: text = (try? JSONScanner.decodeString(bytes, member.range)) ?? ""
        default: return nil
        }
        return Int64(text).flatMap { $0 >= 0 ? $0 : nil }
    }

    static func isZero(_ errorId: String) -> Bool {
        errorId.allSatisfy { $0 == "0" || $0 == "-" } // "0", "-0", "00"
    }

    /// Text of an integer number token (no fraction/exponent unless it is integral, like `1.0`).
    private static func integerText(_ bytes: [UInt8], _ range: Range<Int>, field: String) throws -> String {
        let text = String(decoding: bytes[range], as: UTF8.self)
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-") }),
           text.dropFirst().allSatisfy({ $0 != "-" }), text != "-" {
            return text
        }
        if let value = Double(text), value.rounded() == value, abs(value) < 1e15 {
            return String(Int64(value))
        }
        throw TaskAPIError(.unexpectedShape, "\(field) is not an integer")
    }

    private static func optionalText(_ bytes: [UInt8], _ member: JSONMember, field: String) throws -> String? {
        switch member.kind {
        case .null:
            return nil
        case .string:
            let text = try JSONScanner.decodeString(bytes, member.range)
            return text.isEmpty ? nil : text
        case .number, .bool:
            return String(decoding: bytes[member.range], as: UTF8.self)
        default:
            throw TaskAPIError(.unexpectedShape, "\(field) is not a string")
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
