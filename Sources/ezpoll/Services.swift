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
