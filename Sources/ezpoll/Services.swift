import EmbeddedKafka
import Kafka
import Logging
import Poller
import ServiceLifecycle
import Simulator
import TaskAPI

// The long-lived parts of each command as swift-service-lifecycle `Service`s. A
// `ServiceGroup` starts them in order and, on SIGTERM/SIGINT or when a command is
// done, shuts them down gracefully in reverse order: the pipeline drains first, then
// the observability server stops, then the HTTP client the pipeline was using.

/// Closes the provider HTTP client once every service started after it has stopped.
struct HTTPClientService: Service {
    let client: TaskResultClient

    func run() async throws {
        try? await gracefulShutdown()
        await client.shutdown()
    }
}

/// Serves /metrics and /health until shutdown (the server is bound before the group runs,
/// so a port in use is reported at startup).
struct ObservabilityService: Service {
    let server: ObservabilityServer

    func run() async throws {
        try? await gracefulShutdown()
        await server.stop()
    }
}

/// The simulator's HTTP server, for `ezpoll simulate`.
struct SimulatorService: Service {
    let server: SimulatorServer

    func run() async throws {
        try? await gracefulShutdown()
        await server.stop()
    }
}

/// The embedded Kafka cluster, for `ezpoll broker`.
struct EmbeddedClusterService: Service {
    let cluster: EmbeddedKafkaCluster

    func run() async throws {
        try? await gracefulShutdown()
        cluster.stop()
    }
}

/// A pipeline and its HTTP client run as a service group that the caller stops when it
/// is done (demo, bench): the same shutdown order as `ezpoll run`, without signals.
struct PipelineServices {
    let group: ServiceGroup
    private let running: Task<Void, Error>

    init(pipeline: Pipeline, client: TaskResultClient, logger: Logger) {
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: HTTPClientService(client: client)),
                       .init(service: pipeline, successTerminationBehavior: .gracefullyShutdownGroup)],
            logger: logger))
        self.group = group
        running = Task { try await group.run() }
    }

    /// Drains the pipeline, then closes the client; returns when both have stopped.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
    }
}
