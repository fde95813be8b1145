import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import Simulator
@testable import TaskAPI
@testable import TaskModel

/// The simulator's HTTP endpoints other than getTaskResult.
@Suite("Simulator endpoints")
struct SimulatorHTTPTests {
    private func call(_ http: HTTPClient, _ server: SimulatorServer, _ method: HTTPMethod, _ path: String,
                      _ body: String? = nil) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: server.baseURL + path)
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 24)
        return (Int(response.status.code), String(buffer: bytes))
    }

    private func withHTTP(_ config: SimulatorConfig = .init(),
                          _ body: (HTTPClient, SimulatorServer) async throws -> Void) async throws {
        let server = try await SimulatorServer.start(config: config)
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        do {
            try await body(http, server)
        } catch {
            try? await http.shutdown()
            await server.stop()
            throw error
        }
        try await http.shutdown()
        await server.stop()
    }

    @Test func createTaskBulkBalanceStatsResetConfig() async throws {
        var config = SimulatorConfig()
        config.validKeys = ["k"]
        // The task below must still be processing when it is polled: a solve time of
        // 250 s keeps it so on any machine (a drawn one, 2 s at the least, did not once
        // under load).
        config.solveTime = .fixed(250)
        try await withHTTP(config) { http, server in
            let (status, created) = try await call(http, server, .POST, "/createTask",
                                                   #"{"clientKey":"k","task":{"type":"ReCaptchaV2TaskProxyless"}}"#)
            #expect(status == 200)
            let members = try JSONScanner.members(ofObject: Array(created.utf8))
            #expect(members.map(\.key) == ["errorId", "errorCode", "errorDescription", "taskId"])
            #expect(created.contains(#""errorCode":"""#))
            let taskId = try JSONScanner.decodeString(Array(created.utf8), members[3].range)
            #expect(UUID(uuidString: taskId) != nil)

            let (_, bulk) = try await call(http, server, .POST, "/createTasks", #"{"clientKey":"k","count":500}"#)
            let bulkMembers = try JSONScanner.members(ofObject: Array(bulk.utf8))
            #expect(bulkMembers.last?.key == "taskIds")
            #expect(server.stats().tasksCreated == 501)

            let (_, badKey) = try await call(http, server, .POST, "/createTask", #"{"clientKey":"nope"}"#)
            #expect(badKey.contains("ERROR_KEY_DOES_NOT_EXIST"))

            let (_, balance) = try await call(http, server, .POST, "/getBalance", #"{"clientKey":"k"}"#)
            #expect(balance.contains(#""balance":100"#))

            let (_, result) = try await call(http, server, .POST, "/getTaskResult", #"{"clientKey":"k","taskId":"\#(taskId)"}"#)
            #expect(result.contains(#""status":"processing""#))

            let (statsStatus, statsBody) = try await call(http, server, .GET, "/stats")
            #expect(statsStatus == 200)
            let stats = try JSONDecoder().decode(SimulatorStats.self, from: Data(statsBody.utf8))
            #expect(stats.tasksCreated == 501)
            #expect(stats.getTaskResultCalls == 1)
            #expect(stats.getBalanceCalls == 1)
            #expect(stats.errorResponses == 1)
            for field in ["callsPerTask", "detectionDelay", "callsAfterExpiry", "errorResponses", "bansTriggered", "p50", "p99"] {
                #expect(statsBody.contains("\"\(field)\""), "stats lack \(field)")
            }

            let (missing, _) = try await call(http, server, .GET, "/nope")
            #expect(missing == 404)
            let (garbage, garbageBody) = try await call(http, server, .POST, "/getTaskResult", "not json")
            #expect(garbage == 400)
            #expect(garbageBody.contains("ERROR_REQUIRED_FIELDS"))

            let (configStatus, _) = try await call(http, server, .POST, "/config", #"{"faults":{"http503Probability":1}}"#)
            #expect(configStatus == 200)
            #expect(server.config.faults.http503Probability == 1)
            #expect(server.config.validKeys == ["k"])
            let (badConfig, _) = try await call(http, server, .POST, "/config", #"{"timeScale":"x"}"#)
            #expect(badConfig == 400)

            let (resetStatus, _) = try await call(http, server, .POST, "/reset")
            #expect(resetStatus == 200)
            #expect(server.stats().tasksCreated == 0)
            #expect(server.config.faults.http503Probability == 1) // reset keeps the configuration

        }
    }

    @Test func numericTaskIdInRequestBody() async throws {
        var config = SimulatorConfig()
        config.taskIdStyle = .integer
        try await withHTTP(config) { http, server in
            let id = server.createTask(solveTime: 0)
            let (_, body) = try await call(http, server, .POST, "/getTaskResult", #"{"clientKey":"k","taskId":\#(id)}"#)
            #expect(body.contains(#""status":"ready""#))
            #expect(body.hasSuffix(#""taskId":\#(id)}"#))
        }
    }

    @Test func timeScaleChangeKeepsApiTimeMonotonic() async throws {
        try await withHTTP { _, server in
            let before = server.apiTime()
            try server.updateConfig { $0.timeScale = 1000 }
            let after = server.apiTime()
            #expect(after >= before)
            #expect(after - before < 60)
        }
    }
}
