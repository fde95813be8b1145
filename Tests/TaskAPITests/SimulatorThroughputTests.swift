import Foundation
import Testing
import Simulator
import TaskAPI

/// Opt-in load measurement (no speed assertion: the machine is shared).
/// `EZPOLL_SIM_BENCH=20000 swift test -c release --filter SimulatorThroughput`
@Suite("Simulator throughput")
struct SimulatorThroughputTests {
    static let requests = Int(ProcessInfo.processInfo.environment["EZPOLL_SIM_BENCH"] ?? "") ?? 0

    @Test(.enabled(if: requests > 0, "set EZPOLL_SIM_BENCH=<requests> to run"))
    func clientLoopAgainstSimulator() async throws {
        var clientConfig = fastClientConfig()
        clientConfig.maxConnectionsPerHost = 32
        try await withSimulator(client: clientConfig) { server, client in
            let ids = (0..<1000).map { i in server.createTask(solveTime: i % 2 == 0 ? 0 : 1e6) }
            let key = ClientKey("bench-key")
            let workers = 64
            let perWorker = SimulatorThroughputTests.requests / workers
            let started = ContinuousClock.now
            await withTaskGroup(of: Void.self) { group in
                for w in 0..<workers {
                    group.addTask {
                        for i in 0..<perWorker {
                            _ = await client.getTaskResult(taskId: ids[(w * perWorker + i) % ids.count], clientKey: key)
                        }
                    }
                }
            }
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let total = perWorker * workers
            print("simulator throughput: \(total) getTaskResult calls through TaskResultClient in \(seconds) s = \(Int(Double(total) / seconds)) req/s")
            #expect(server.stats().getTaskResultCalls == total)
        }
    }
}
