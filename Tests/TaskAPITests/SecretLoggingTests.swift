import AsyncHTTPClient
import Logging
import NIOCore
import Testing
import TestSupport
@testable import Simulator
@testable import TaskAPI
@testable import TaskModel

@Suite("The client key never leaks")
struct SecretLoggingTests {
    static let secret = "EZPOLL-SECRET-KEY-7f3a9c1e5b"

    @Test func keyNeverAppearsInTraceLogsOutcomesOrStats() async throws {
        let store = CapturingLogHandler.Store()
        var logger = Logger(label: "ezpoll.taskapi.test") { label in CapturingLogHandler(store: store, label: label) }
        logger.logLevel = .trace
        logger[metadataKey: "test"] = "secret-logging"
        let key = ClientKey(SecretLoggingTests.secret)
        var outcomes: [TaskOutcome] = []

        var config = SimulatorConfig()
        config.validKeys = [SecretLoggingTests.secret, "other"]
        config.ban = .init(maxErrors: 1000, window: 1, duration: 1)
        var clientConfig = fastClientConfig()
        clientConfig.readTimeout = .milliseconds(300)
        clientConfig.requestTimeout = .milliseconds(800)
        try await withSimulator(config, client: clientConfig, logger: logger) { server, client in
            // Ready, processing, task error, account error (another key), then every fault.
            outcomes.append(await client.getTaskResult(taskId: server.createTask(solveTime: 0), clientKey: key))
            outcomes.append(await client.getTaskResult(taskId: server.createTask(solveTime: 1e6), clientKey: key))
            outcomes.append(await client.getTaskResult(taskId: "missing", clientKey: key))
            outcomes.append(await client.getTaskResult(taskId: "missing", clientKey: ClientKey(SecretLoggingTests.secret + "x")))
            let faults: [(inout SimulatorConfig.FaultConfig) -> Void] = [
                { $0.http500Probability = 1 }, { $0.http429Probability = 1 }, { $0.dropProbability = 1 },
                { $0.malformedProbability = 1 }, { $0.truncatedProbability = 1 },
                { $0.serviceUnavailableProbability = 1 }, { $0.slowProbability = 1; $0.slowDelayReal = 30 },
            ]
            for fault in faults {
                try server.updateConfig { config in
                    config.faults = .init()
                    fault(&config.faults)
                }
                outcomes.append(await client.getTaskResult(taskId: server.createTask(solveTime: 0), clientKey: key))
            }
            try server.updateConfig { $0.faults = .init() }
            let stats = server.stats()
            #expect(!"\(stats)".contains(SecretLoggingTests.secret))
        }

        let lines = store.all
        #expect(lines.count >= outcomes.count, "the client should log each call at debug level")
        #expect(lines.contains { $0.contains(key.fingerprint) }, "logs name the key by its fingerprint")
        for line in lines {
            #expect(!line.contains(SecretLoggingTests.secret), "key leaked in log line: \(line)")
        }
        for outcome in outcomes {
            #expect(!"\(outcome)".contains(SecretLoggingTests.secret), "key leaked in outcome: \(outcome)")
        }
    }

    @Test func providerEchoingTheKeyIsRedacted() {
        let key = ClientKey(SecretLoggingTests.secret)
        let echoed = TaskOutcome.failed(.account, code: "ERROR_KEY_DOES_NOT_EXIST",
                                        description: "key \(SecretLoggingTests.secret) not found")
        let redacted = echoed.redacting(key)
        #expect(!"\(redacted)".contains(SecretLoggingTests.secret))
        #expect("\(redacted)".contains(key.fingerprint))
    }

    @Test func outcomeRedactionAlsoBlanksKeysNamedInTheDescription() {
        let key = ClientKey(SecretLoggingTests.secret)
        let echoed = TaskOutcome.failed(.account, code: "ERROR_KEY_DOES_NOT_EXIST",
                                        description: #"bad {"clientKey":"other-key"} and \#(SecretLoggingTests.secret)"#)
        guard case .failed(_, _, let description?, _) = echoed.redacting(key) else {
            Issue.record("the redacted outcome lost its description")
            return
        }
        #expect(description == #"bad {"clientKey":"[REDACTED]"} and \#(key.description)"#)
        #expect(TaskOutcome.failed(.transient(.timeout, retryAfter: nil), code: "TIMEOUT", description: "slow").redacting(key)
                == .failed(.transient(.timeout, retryAfter: nil), code: "TIMEOUT", description: "slow"))
    }
}
