import Logging
import Simulator
import TaskAPI
import Testing

/// Starts a simulator on 127.0.0.1:0 and a client pointed at it; always tears both down.
func withSimulator(
    _ config: SimulatorConfig = SimulatorConfig(),
    client clientConfig: TaskResultClient.Configuration = fastClientConfig(),
    logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
    _ body: (SimulatorServer, TaskResultClient) async throws -> Void
) async throws {
    let server = try await SimulatorServer.start(config: config, host: "127.0.0.1", port: 0)
    let client: TaskResultClient
    do {
        client = try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: server.baseURL),
                                      configuration: clientConfig, logger: logger)
    } catch {
        await server.stop()
        throw error
    }
    do {
        try await body(server, client)
    } catch {
        await client.shutdown()
        await server.stop()
        throw error
    }
    await client.shutdown()
    await server.stop()
}

/// Generous timeouts: tests must not flake on a loaded machine.
func fastClientConfig() -> TaskResultClient.Configuration {
    TaskResultClient.Configuration(connectTimeout: .seconds(5), readTimeout: .seconds(20), requestTimeout: .seconds(30),
                                   maxConnectionsPerHost: 8)
}

/// Checks a failure's class and code (not its description).
func expectFailed(_ outcome: TaskOutcome, _ expected: FailureClass, _ code: String,
                  sourceLocation: SourceLocation = #_sourceLocation) {
    guard case .failed(let actual, let actualCode, _, _) = outcome, actual == expected, actualCode == code else {
        Issue.record("expected failed(\(expected), \(code)), got \(outcome)", sourceLocation: sourceLocation)
        return
    }
}

/// Checks the outcome is ready and returns its solution.
@discardableResult
func expectReady(_ outcome: TaskOutcome, sourceLocation: SourceLocation = #_sourceLocation) -> RawJSON? {
    guard case .ready(let solution, _) = outcome else {
        Issue.record("expected ready, got \(outcome)", sourceLocation: sourceLocation)
        return nil
    }
    return solution
}
