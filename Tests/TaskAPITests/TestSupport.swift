import Logging
import NIOConcurrencyHelpers
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

/// A LogHandler that keeps every rendered line (message, metadata, source) in memory.
struct CapturingLogHandler: LogHandler {
    final class Store: Sendable {
        let lines = NIOLockedValueBox<[String]>([])
        var all: [String] { lines.withLockedValue { $0 } }
    }

    let store: Store
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { _, new in new }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let error = event.error.map { " error=\($0)" } ?? ""
        store.lines.withLockedValue { $0.append("\(event.level) \(label) [\(event.source)] \(event.message) \(rendered)\(error)") }
    }
}

/// Checks a failure's class and code (not its description).
func expectFailed(_ outcome: TaskOutcome, _ expected: FailureClass, _ code: String,
                  sourceLocation: SourceLocation = #_sourceLocation) {
    guard case .failed(let actual, let actualCode, _) = outcome, actual == expected, actualCode == code else {
        Issue.record("expected failed(\(expected), \(code)), got \(outcome)", sourceLocation: sourceLocation)
        return
    }
}

/// Checks the outcome is ready and returns its solution.
@discardableResult
func expectReady(_ outcome: TaskOutcome, sourceLocation: SourceLocation = #_sourceLocation) -> RawJSON? {
    guard case .ready(let solution) = outcome else {
        Issue.record("expected ready, got \(outcome)", sourceLocation: sourceLocation)
        return nil
    }
    return solution
}
