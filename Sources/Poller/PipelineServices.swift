import Logging
import ServiceLifecycle
import TaskAPI

// `ezpoll run` puts these in its own ServiceGroup (with the observability server and
// signals); demo and bench use `PipelineServices`: the same shutdown order without
// signals. The pipeline drains first, then the HTTP client it was using closes.

/// Closes the provider HTTP client once every service started after it has stopped.
public struct HTTPClientService: Service {
    let client: TaskResultClient

    public init(client: TaskResultClient) { self.client = client }

    public func run() async throws {
        try? await gracefulShutdown()
        await client.shutdown()
    }
}

/// A pipeline and its HTTP client run as a service group that the caller stops when it
/// is done (demo, bench): the same shutdown order as `ezpoll run`, without signals.
public struct PipelineServices: Sendable {
    public let group: ServiceGroup
    private let running: Task<Void, Error>

    public init(pipeline: Pipeline, client: TaskResultClient, logger: Logger) {
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: HTTPClientService(client: client)),
                       .init(service: pipeline, successTerminationBehavior: .gracefullyShutdownGroup)],
            logger: logger))
        self.group = group
        running = Task { try await group.run() }
    }

    /// Drains the pipeline, then closes the client; returns when both have stopped.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
    }
}
