import Logging
import ServiceLifecycle
import TaskAPI

// The long-lived parts of each command run as swift-service-lifecycle services. A
// `ServiceGroup` starts them in order and, on SIGTERM/SIGINT or when a command is done,
// shuts them down gracefully in reverse order: in `ezpoll run` the pipeline drains
// first, then the observability server stops, then the HTTP clients close. Demo and
// bench use `PipelineServices`: the same shutdown order without signals.

/// A part that needs no running, only stopping (an HTTP client, a server bound before
/// the group runs, the embedded cluster): waits for the group's graceful shutdown, then
/// runs `stop`.
public struct StopOnShutdown: Service {
    let stop: @Sendable () async -> Void

    public init(_ stop: @escaping @Sendable () async -> Void) { self.stop = stop }

    public func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }
}

/// A pipeline and its HTTP client run as a service group that the caller stops when it
/// is done (demo, bench): the same shutdown order as `ezpoll run`, without signals.
public struct PipelineServices: Sendable {
    public let group: ServiceGroup
    private let running: Task<Void, Error>

    public init(pipeline: Pipeline, client: TaskResultClient, logger: Logger) {
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: StopOnShutdown { await client.shutdown() }),
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
