import AsyncHTTPClient
import NIOCore
import Testing
@testable import Simulator
@testable import TaskAPI
@testable import TaskModel

/// Every outcome class reached through the real HTTP path: async-http-client →
/// loopback → SwiftNIO simulator.
@Suite("Client against the simulator")
struct ClientAgainstSimulatorTests {
    let key = ClientKey("test-key")

    @Test func processingThenReadyWithByteExactSolution() async throws {
        try await withSimulator { server, client in
            let pending = server.createTask(solveTime: 10_000)
            #expect(await client.getTaskResult(taskId: pending, clientKey: key) == .processing)
            let done = server.createTask(solveTime: 0)
            let outcome = await client.getTaskResult(taskId: done, clientKey: key)
            guard let solution = expectReady(outcome) else { return }
            #expect(solution.bytes == SimulatorResponses.solution(taskId: done))
            #expect(solution.text.contains("caf\\u00e9 ✓"))
            #expect(solution.text.contains("0.90000000000000002"))
            // The simulator answers as anti-captcha does: price, times, solveCount.
            if case .ready(_, let receipt) = outcome {
                #expect(receipt.cost == "0.00100")
                #expect(receipt.solveCount == 1)
                #expect(receipt.providerSolveTime == .zero, "solved at once")
            }
        }
    }

    @Test func createdThroughTheRulesWithTimeScale() async throws {
        var config = SimulatorConfig()
        config.timeScale = 100 // solve times of 2…120 s become 20 ms…1.2 s
        config.resultWindow = 3_000 // 30 s real: a loaded machine must not expire the tasks mid-test
        config.seed = 3
        try await withSimulator(config) { server, client in
            let ids = server.createTasks(count: 5, clientKey: "any")
            #expect(ids.count == 5)
            let outcomes = await withTaskGroup(of: TaskOutcome.self) { group in
                for id in ids {
                    group.addTask {
                        var outcome = await client.getTaskResult(taskId: id, clientKey: key)
                        while outcome == .processing {
                            try? await Task.sleep(for: .milliseconds(10)) // the poll interval, not a wait for a condition
                            outcome = await client.getTaskResult(taskId: id, clientKey: key)
                        }
                        return outcome
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            outcomes.forEach { expectReady($0) }
            let stats = server.stats()
            #expect(stats.tasksSeenReady == 5)
            #expect(stats.detectionDelay.count == 5)
        }
    }

    @Test func integerTaskIds() async throws {
        var config = SimulatorConfig()
        config.taskIdStyle = .integer
        try await withSimulator(config) { server, client in
            let id = server.createTask(solveTime: 0)
            #expect(UInt64(id)! > UInt64(Int32.max))
            expectReady(await client.getTaskResult(taskId: id, clientKey: key))
        }
    }

    @Test func taskFailures() async throws {
        try await withSimulator { server, client in
            let unknown = await client.getTaskResult(taskId: "00000000-0000-4000-8000-000000000000", clientKey: key)
            #expect(unknown.failureCode == "ERROR_TASKID_INVALID")
            if case .failed(let failureClass, _, let description, _) = unknown {
                #expect(failureClass == .unknownTask)
                #expect(description == SimProviderError.taskIdInvalid.description)
            }
            let unsolvable = server.createTask(solveTime: 0, unsolvable: true)
            #expect(await client.getTaskResult(taskId: unsolvable, clientKey: key)
                == .failed(.task, code: "ERROR_CAPTCHA_UNSOLVABLE", description: SimProviderError.captchaUnsolvable.description, errorId: 1))
        }
    }

    @Test func expiredTask() async throws {
        try await withSimulator { server, client in
            let id = server.createTask(solveTime: 1)
            server.withCore { core, now in core.advanceForTesting(taskId: id, by: 301) }
            #expect(await client.getTaskResult(taskId: id, clientKey: key).failureCode == "ERROR_TASKID_INVALID")
            #expect(server.stats().callsAfterExpiry == 1)
        }
    }

    @Test func accountFailures() async throws {
        var config = SimulatorConfig()
        config.validKeys = ["good", "broke"]
        config.zeroBalanceKeys = ["broke"]
        try await withSimulator(config) { server, client in
            let id = server.createTask(solveTime: 100)
            let unknownKey = await client.getTaskResult(taskId: id, clientKey: ClientKey("wrong"))
            #expect(unknownKey.failureCode == "ERROR_KEY_DOES_NOT_EXIST")
            if case .failed(let failureClass, _, _, _) = unknownKey { #expect(failureClass == .account) }
            let broke = await client.getTaskResult(taskId: id, clientKey: ClientKey("broke"))
            #expect(broke.failureCode == "ERROR_ZERO_BALANCE")
            if case .failed(let failureClass, _, _, _) = broke { #expect(failureClass == .account) }
            #expect(await client.getTaskResult(taskId: id, clientKey: ClientKey("good")) == .processing)
        }
    }

    @Test func ipBan() async throws {
        var config = SimulatorConfig()
        config.ban = .init(maxErrors: 2, window: 60, duration: 600)
        try await withSimulator(config) { server, client in
            let id = server.createTask(solveTime: 0)
            for _ in 0..<3 {
                _ = await client.getTaskResult(taskId: "bogus", clientKey: key)
            }
            expectFailed(await client.getTaskResult(taskId: id, clientKey: key), .ban, "ERROR_IP_BANNED")
            #expect(server.stats().bansTriggered == 1)
        }
    }

    @Test func perTaskRateLimit() async throws {
        var config = SimulatorConfig()
        config.minPollInterval = 1000
        try await withSimulator(config) { server, client in
            let id = server.createTask(solveTime: 10_000)
            #expect(await client.getTaskResult(taskId: id, clientKey: key) == .processing)
            expectFailed(await client.getTaskResult(taskId: id, clientKey: key),
                         .transient(.taskRateLimited, retryAfter: ProviderProfile.ezCaptcha.minPollInterval),
                         "ERROR_TOO_MUCH_REQUESTS")
        }
    }

    @Test func http429WithRetryAfter() async throws {
        try await withSimulator { server, client in
            try server.updateConfig {
                $0.faults.http429Probability = 1
                $0.faults.retryAfterSeconds = 7
            }
            let outcome = await client.getTaskResult(taskId: server.createTask(solveTime: 0), clientKey: key)
            #expect(outcome == .failed(.transient(.httpStatus(429), retryAfter: .seconds(7)), code: "HTTP_429", description: nil))
        }
    }

    @Test(arguments: [500, 503])
    func serverErrors(_ status: Int) async throws {
        try await withSimulator { server, client in
            try server.updateConfig {
                if status == 500 { $0.faults.http500Probability = 1 } else { $0.faults.http503Probability = 1 }
            }
            let id = server.createTask(solveTime: 0)
            #expect(await client.getTaskResult(taskId: id, clientKey: key)
                == .failed(.transient(.httpStatus(status), retryAfter: nil), code: "HTTP_\(status)", description: nil))
            // Flip the fault off mid-run: the same client recovers on the same pool.
            try server.updateConfig { $0.faults = .init() }
            expectReady(await client.getTaskResult(taskId: id, clientKey: key))
        }
    }

    @Test func droppedConnection() async throws {
        try await withSimulator { server, client in
            try server.updateConfig { $0.faults.dropProbability = 1 }
            expectFailed(await client.getTaskResult(taskId: server.createTask(solveTime: 0), clientKey: key),
                         .transient(.connection, retryAfter: nil), "CONNECTION_ERROR")
            #expect(server.stats().faults.dropped >= 1)
        }
    }

    @Test func malformedAndTruncatedBodies() async throws {
        try await withSimulator { server, client in
            let id = server.createTask(solveTime: 0)
            try server.updateConfig { $0.faults.malformedProbability = 1 }
            expectFailed(await client.getTaskResult(taskId: id, clientKey: key), .transient(.badBody, retryAfter: nil), "BAD_BODY")
            try server.updateConfig { $0.faults = .init(); $0.faults.truncatedProbability = 1 }
            expectFailed(await client.getTaskResult(taskId: id, clientKey: key), .transient(.badBody, retryAfter: nil), "BAD_BODY")
        }
    }

    @Test func serviceUnavailableIsProviderBusy() async throws {
        try await withSimulator { server, client in
            try server.updateConfig { $0.faults.serviceUnavailableProbability = 1 }
            expectFailed(await client.getTaskResult(taskId: server.createTask(solveTime: 0), clientKey: key),
                         .transient(.providerBusy, retryAfter: nil), "ERROR_SERVICE_UNAVALIABLE")
        }
    }

    @Test func readTimeoutFiresWithinItsBound() async throws {
        var clientConfig = fastClientConfig()
        clientConfig.readTimeout = .milliseconds(300)
        clientConfig.requestTimeout = .milliseconds(800)
        var config = SimulatorConfig()
        config.faults.slowProbability = 1
        config.faults.slowDelayReal = 30
        try await withSimulator(config, client: clientConfig) { server, client in
            let started = ContinuousClock.now
            let outcome = await client.getTaskResult(taskId: server.createTask(solveTime: 0), clientKey: key)
            let elapsed = ContinuousClock.now - started
            expectFailed(outcome, .transient(.timeout, retryAfter: nil), "TIMEOUT")
            #expect(elapsed < .seconds(15), "timeout took \(elapsed), far beyond its bound of 0.8 s")
        }
    }

    @Test func connectionRefused() async throws {
        var clientConfig = fastClientConfig()
        clientConfig.connectTimeout = .milliseconds(500)
        let server = try await SimulatorServer.start()
        let profile = ProviderProfile.ezCaptcha.with(baseURL: server.baseURL)
        await server.stop()
        let client = try TaskResultClient(profile: profile, configuration: clientConfig)
        let outcome = await client.getTaskResult(taskId: "x", clientKey: key)
        await client.shutdown()
        guard case .failed(.transient(let reason, nil), _, _, _) = outcome, reason == .connection || reason == .timeout else {
            Issue.record("expected connection failure, got \(outcome)")
            return
        }
    }

    @Test func invalidBaseURLIsRejected() {
        #expect(throws: TaskAPIError.self) {
            _ = try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: "ftp://x"))
        }
    }

    @Test func shutdownIsIdempotentAndForgettingItDoesNotCrash() async throws {
        let client = try TaskResultClient(profile: .ezCaptcha)
        await client.shutdown()
        await client.shutdown()
        // A call after the shutdown ends at once as a transient connection failure, no request sent.
        let outcome = await client.getTaskResult(taskId: "t", clientKey: key)
        guard case .failed(.transient(.connection, _), _, _, _) = outcome else {
            Issue.record("a call after shutdown: \(outcome)")
            return
        }
        #expect(client.callsInProgress == 0)
        // Dropped without shutdown: deinit shuts it down in the background.
        _ = try TaskResultClient(profile: .ezCaptcha)
    }

    @Test func manyConcurrentCallsShareThePool() async throws {
        try await withSimulator { server, client in
            let ids = (0..<200).map { _ in server.createTask(solveTime: 0) }
            let ready = await withTaskGroup(of: Bool.self) { group in
                for id in ids {
                    group.addTask {
                        if case .ready = await client.getTaskResult(taskId: id, clientKey: key) { return true }
                        return false
                    }
                }
                var count = 0
                for await ok in group where ok { count += 1 }
                return count
            }
            #expect(ready == 200)
            #expect(server.stats().getTaskResultCalls == 200)
        }
    }
}
