import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import TaskAPI

/// A response the HTTP layer should send (or a dropped connection).
struct SimHTTPResponse: Sendable {
    var status: HTTPResponseStatus = .ok
    var contentType = "application/json"
    var extraHeaders: [(String, String)] = []
    var body: [UInt8] = []
    var drop = false
    var delayReal: Double? = nil
}

/// Routes HTTP requests to a lock-protected `SimulatorCore`, reading the clock
/// and drawing faults inside the lock and encoding bodies outside it.
/// Never logs request bodies (they carry client keys).
final class SimulatorEngine: Sendable {
    struct State: Sendable {
        var core: SimulatorCore
        var timebase: SimTimebase
    }

    private let state: NIOLockedValueBox<State>
    private let callbacks: CallbackSender
    static let maxBulkCreate = 100_000

    init(config: SimulatorConfig, group: EventLoopGroup) {
        let state = NIOLockedValueBox(State(core: SimulatorCore(config: config),
                                            timebase: SimTimebase(scale: config.timeScale, nanos: SimTimebase.clock())))
        self.state = state
        callbacks = CallbackSender(group: group) { delivered in
            state.withLockedValue { state in
                if delivered { state.core.counters.callbacksDelivered += 1 } else { state.core.counters.callbacksFailed += 1 }
            }
        }
    }

    // MARK: - Swift API

    /// The core under the lock; callbacks the body planned (by creating tasks) are sent after it.
    func withState<T>(_ body: (inout SimulatorCore, _ now: Double) -> T) -> T {
        let (result, deliveries, now, scale) = state.withLockedValue { state in
            let now = state.timebase.now(SimTimebase.clock())
            let result = body(&state.core, now)
            return (result, state.core.takeCallbacks(), now, state.timebase.scale)
        }
        if !deliveries.isEmpty { callbacks.send(deliveries, now: now, scale: scale) }
        return result
    }

    /// Sends no more callbacks.
    func shutdown() async {
        await callbacks.shutdown()
    }

    var config: SimulatorConfig { state.withLockedValue { $0.core.config } }

    func apply(_ config: SimulatorConfig) {
        state.withLockedValue { state in
            let nanos = SimTimebase.clock()
            if config.timeScale != state.timebase.scale {
                state.timebase.rescale(config.timeScale, at: nanos)
            }
            state.core.apply(config)
        }
    }

    func reset(config: SimulatorConfig?) {
        state.withLockedValue { state in
            let newConfig = config ?? state.core.config
            state.core.reset(config: newConfig)
            state.timebase = SimTimebase(scale: newConfig.timeScale, nanos: SimTimebase.clock())
        }
    }

    // MARK: - HTTP

    /// The value of `name` in the URI's query, if any.
    static func query(_ uri: String, _ name: String) -> String? {
        guard let mark = uri.firstIndex(of: "?") else { return nil }
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == name { return String(parts[1]) }
        }
        return nil
    }

    func handle(method: HTTPMethod, uri: String, body: [UInt8]) -> SimHTTPResponse {
        let path = uri.firstIndex(of: "?").map { uri[..<$0] } ?? Substring(uri)
        switch (method, path) {
        case (.POST, "/getTaskResult"): return getTaskResult(body)
        case (.POST, "/createTask"): return createTasks(body, bulk: false)
        case (.POST, "/createTasks"): return createTasks(body, bulk: true)
        case (.POST, "/getBalance"): return getBalance(body)
        case (.GET, "/stats"): return statsResponse(detectedSince: Self.query(uri, "detectedSince").flatMap(Double.init))
        case (.POST, "/reset"):
            if body.isEmpty || body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                reset(config: nil)
                return SimHTTPResponse(body: Array(#"{"ok":true}"#.utf8))
            }
            do {
                reset(config: try config.merged(withJSON: body))
                return SimHTTPResponse(body: Array(#"{"ok":true}"#.utf8))
            } catch {
                return badRequest("\(error)")
            }
        case (.GET, "/config"): return SimHTTPResponse(body: config.jsonBytes())
        case (.POST, "/config"):
            do {
                let updated = try state.withLockedValue { try $0.core.config.merged(withJSON: body) }
                apply(updated)
                return SimHTTPResponse(body: updated.jsonBytes())
            } catch {
                return badRequest("\(error)")
            }
        case (.GET, "/health"): return SimHTTPResponse(body: Array(#"{"ok":true}"#.utf8))
        default:
            return SimHTTPResponse(status: .notFound, body: Array(#"{"error":"not found"}"#.utf8))
        }
    }

    private func badRequest(_ message: String) -> SimHTTPResponse {
        SimHTTPResponse(status: .badRequest, body: Array(#"{"error":\#(JSONEscaping.quoted(message))}"#.utf8))
    }

    /// The fields of a request body: clientKey, taskId (string or number), count.
    struct RequestFields {
        var clientKey: String?
        var taskId: String?
        var count: Int?
        var callbackUrl: String?

        init?(_ body: [UInt8]) {
            guard let members = try? JSONScanner.members(ofObject: body) else { return nil }
            for member in members {
                switch (member.key, member.kind) {
                case ("clientKey", .string):
                    clientKey = try? JSONScanner.decodeString(body, member.range)
                case ("taskId", .string):
                    taskId = try? JSONScanner.decodeString(body, member.range)
                case ("taskId", .number):
                    taskId = String(decoding: body[member.range], as: UTF8.self)
                case ("callbackUrl", .string):
                    callbackUrl = try? JSONScanner.decodeString(body, member.range)
                case ("count", .number):
                    count = Int(String(decoding: body[member.range], as: UTF8.self))
                default:
                    continue
                }
            }
        }
    }

    private func requiredFieldsError() -> SimHTTPResponse {
        let error = SimProviderError(code: "ERROR_REQUIRED_FIELDS", description: "Required fields are missing or the body is not JSON",
                                     countsForBan: false)
        return SimHTTPResponse(status: .badRequest, body: SimulatorResponses.error(error))
    }

    private func getTaskResult(_ body: [UInt8]) -> SimHTTPResponse {
        let fields = RequestFields(body)
        let (faults, reply, style) = state.withLockedValue { state -> (FaultDecision, SimulatorCore.ResultReply?, SimulatorConfig.TaskIdStyle) in
            let now = state.timebase.now(SimTimebase.clock())
            let faults = state.core.drawFaults()
            switch faults.kind {
            case .none, .malformed, .truncated:
                guard let fields, let key = fields.clientKey, let taskId = fields.taskId else {
                    return (faults, nil, state.core.config.taskIdStyle)
                }
                return (faults, state.core.getTaskResult(clientKey: key, taskId: taskId, now: now), state.core.config.taskIdStyle)
            case .drop, .http, .tooManyRequests, .serviceUnavailable:
                state.core.countFaultedCall()
                return (faults, nil, state.core.config.taskIdStyle)
            }
        }
        var response: SimHTTPResponse
        switch faults.kind {
        case .drop:
            response = SimHTTPResponse(drop: true)
        case .http(let code):
            response = SimHTTPResponse(status: HTTPResponseStatus(statusCode: code), contentType: "text/html",
                                       body: SimulatorResponses.html(status: code))
        case .tooManyRequests(let retryAfter):
            response = SimHTTPResponse(status: .tooManyRequests, contentType: "text/html",
                                       extraHeaders: [("Retry-After", String(retryAfter))],
                                       body: SimulatorResponses.html(status: 429))
        case .serviceUnavailable:
            response = SimHTTPResponse(body: SimulatorResponses.error(.serviceUnavailable))
        case .none, .malformed, .truncated:
            guard let reply, let taskId = fields?.taskId else { return requiredFieldsError() }
            switch reply {
            case .processing:
                response = SimHTTPResponse(body: SimulatorResponses.processing(taskId: taskId, style: style))
            case .ready(let createdAt, let readyAt):
                response = SimHTTPResponse(body: SimulatorResponses.ready(taskId: taskId, style: style,
                                                                          createdAt: createdAt, readyAt: readyAt))
            case .error(let error):
                response = SimHTTPResponse(body: SimulatorResponses.error(error))
            }
            if faults.kind == .malformed {
                response = SimHTTPResponse(contentType: "text/html", body: SimulatorResponses.malformed)
            } else if faults.kind == .truncated {
                response.body = Array(response.body.prefix(max(1, response.body.count / 2)))
            }
        }
        response.delayReal = faults.delayReal
        return response
    }

    private func createTasks(_ body: [UInt8], bulk: Bool) -> SimHTTPResponse {
        guard let fields = RequestFields(body), let key = fields.clientKey else { return requiredFieldsError() }
        let count = bulk ? min(max(fields.count ?? 1, 0), SimulatorEngine.maxBulkCreate) : 1
        let (reply, style) = withState { core, now in
            (core.createTasks(clientKey: key, count: count, callbackUrl: fields.callbackUrl, now: now), core.config.taskIdStyle)
        }
        switch reply {
        case .created(let ids):
            return SimHTTPResponse(body: SimulatorResponses.created(taskIds: ids, style: style, bulk: bulk))
        case .error(let error):
            return SimHTTPResponse(body: SimulatorResponses.error(error))
        }
    }

    private func getBalance(_ body: [UInt8]) -> SimHTTPResponse {
        guard let fields = RequestFields(body), let key = fields.clientKey else { return requiredFieldsError() }
        switch withState({ core, now in core.getBalance(clientKey: key, now: now) }) {
        case .balance(let value): return SimHTTPResponse(body: SimulatorResponses.balance(value))
        case .error(let error): return SimHTTPResponse(body: SimulatorResponses.error(error))
        }
    }

    func stats(detectedSince: Double? = nil) -> SimulatorStats {
        withState { core, now in core.stats(now: now, detectedSince: detectedSince) }
    }

    /// `GET /stats?detectedSince=<API seconds>`: the detection delay of tasks seen ready since then.
    private func statsResponse(detectedSince: Double?) -> SimHTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? Array(encoder.encode(stats(detectedSince: detectedSince)))) ?? Array("{}".utf8)
        return SimHTTPResponse(body: body)
    }
}

/// API time = anchor + real elapsed × scale; rescaling re-anchors so API time never jumps.
struct SimTimebase: Sendable {
    var apiAtAnchor: Double = 0
    var anchorNanos: UInt64
    var scale: Double

    init(scale: Double, nanos: UInt64) {
        self.scale = scale
        self.anchorNanos = nanos
    }

    static func clock() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    func now(_ nanos: UInt64) -> Double {
        let elapsed = nanos >= anchorNanos ? Double(nanos - anchorNanos) / 1e9 : 0
        return apiAtAnchor + elapsed * scale
    }

    mutating func rescale(_ newScale: Double, at nanos: UInt64) {
        apiAtAnchor = now(nanos)
        anchorNanos = nanos
        scale = newScale
    }
}
