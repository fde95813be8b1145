import TaskAPI

/// Byte builders for the simulator's JSON bodies (no Foundation on the hot path).
enum SimulatorResponses {
    /// Unix time of API second 0 in `createTime`/`endTime`.
    static let epochBase = 1_700_000_000.0

    /// The solution of a task: deterministic per id, with a long-precision
    /// number and non-ASCII text so byte-exact pass-through is testable.
    static func solution(taskId: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(200 + taskId.utf8.count * 2)
        out.append(contentsOf: #"{"gRecaptchaResponse":"03AFcWeA-sim-"#.utf8)
        out.append(contentsOf: taskId.utf8)
        out.append(contentsOf: #"","token":"sim.token."#.utf8)
        out.append(contentsOf: taskId.utf8)
        out.append(contentsOf: #"","userAgent":"Mozilla/5.0 (X11; Linux x86_64) ezpoll-sim","score":0.90000000000000002,"note":"caf\u00e9 ✓"}"#.utf8)
        return out
    }

    static func appendTaskId(_ taskId: String, style: SimulatorConfig.TaskIdStyle, to out: inout [UInt8]) {
        switch style {
        case .integer: out.append(contentsOf: taskId.utf8)
        case .uuid: JSONEscaping.appendString(taskId, to: &out)
        }
    }

    /// A forged callback's body: "ready" with a solution no poll ever returns.
    static let forgedSolutionMarker = "FORGED-BY-A-THIRD-PARTY"
    static func forgedReady(taskId: String, style: SimulatorConfig.TaskIdStyle) -> [UInt8] {
        var out = Array(#"{"errorId":0,"status":"ready","solution":{"gRecaptchaResponse":"\#(forgedSolutionMarker)"},"taskId":"#.utf8)
        appendTaskId(taskId, style: style, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    static func processing(taskId: String, style: SimulatorConfig.TaskIdStyle) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        out.append(contentsOf: #"{"errorId":0,"errorCode":null,"errorDescription":null,"status":"processing","taskId":"#.utf8)
        appendTaskId(taskId, style: style, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    static func ready(taskId: String, style: SimulatorConfig.TaskIdStyle, createdAt: Double, readyAt: Double) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(400)
        out.append(contentsOf: #"{"errorId":0,"errorCode":null,"errorDescription":null,"status":"ready","solution":"#.utf8)
        out.append(contentsOf: solution(taskId: taskId))
        out.append(contentsOf: #","cost":"0.00100","ip":"127.0.0.1","createTime":"#.utf8)
        out.append(contentsOf: String(Int64(epochBase + createdAt)).utf8)
        out.append(contentsOf: #","endTime":"#.utf8)
        out.append(contentsOf: String(Int64(epochBase + readyAt)).utf8)
        out.append(contentsOf: #","solveCount":"1","taskId":"#.utf8)
        appendTaskId(taskId, style: style, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    static func error(_ error: SimProviderError, taskId: String? = nil) -> [UInt8] {
        var w = JSONWriter(capacity: 160)
        w.integer("errorId", 1)
        w.string("errorCode", error.code)
        w.string("errorDescription", error.description)
        w.optionalString("taskId", taskId)
        return w.finish()
    }

    static func created(taskIds: [String], style: SimulatorConfig.TaskIdStyle, bulk: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + taskIds.count * 40)
        out.append(contentsOf: #"{"errorId":0,"errorCode":"","errorDescription":"","#.utf8)
        if bulk {
            out.append(contentsOf: #""taskIds":["#.utf8)
            for (i, id) in taskIds.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendTaskId(id, style: style, to: &out)
            }
            out.append(contentsOf: "]}".utf8)
        } else {
            out.append(contentsOf: #""taskId":"#.utf8)
            appendTaskId(taskIds.first ?? "", style: style, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        return out
    }

    static func balance(_ value: Double) -> [UInt8] {
        Array(#"{"errorId":0,"errorCode":"","errorDescription":"","balance":\#(value)}"#.utf8)
    }

    static let malformed: [UInt8] = Array("<html><body><h1>502 Bad Gateway</h1>upstream sent garbage</body></html>".utf8)

    static func html(status: Int) -> [UInt8] {
        Array("<html><head><title>\(status)</title></head><body><center><h1>\(status)</h1></center></body></html>".utf8)
    }
}
