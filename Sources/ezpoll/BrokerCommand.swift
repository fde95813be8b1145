import ArgumentParser
import Foundation
import EmbeddedKafka
import Kafka
import Poller
import Logging
import ServiceLifecycle

/// `ezpoll broker`: an embedded Kafka cluster (librdkafka's mock cluster) on loopback,
/// for multi-process tests and laptops without Docker.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Serve an embedded Kafka cluster on loopback until SIGINT/SIGTERM.",
        discussion: """
            Starts librdkafka's mock cluster: a real Kafka-protocol broker set inside this \
            process, on random loopback ports. Prints the bootstrap servers on stdout. \
            Data lives in memory only and each partition keeps about 5 MiB.
            """
    )

    @Option(name: .long, help: "Number of brokers.")
    var brokers: Int = 1

    @Option(name: .long, parsing: .singleValue,
            help: "A topic to create, as NAME:PARTITIONS (repeatable).")
    var topic: [String] = []

    @Option(name: .long, help: "Also write the bootstrap servers to this file.")
    var bootstrapFile: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard brokers >= 1 else { throw ValidationError("--brokers must be at least 1") }
        for spec in topic { _ = try Self.parseTopic(spec) }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    static func parseTopic(_ spec: String) throws -> (name: String, partitions: Int) {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let count = Int(parts[1]), count >= 1 else {
            throw ValidationError("--topic takes NAME:PARTITIONS with PARTITIONS >= 1, got '\(spec)'")
        }
        return (String(parts[0]), count)
    }

    func run() async throws {
        var logger = Logger(label: "ezpoll.broker")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let cluster = try EmbeddedKafkaCluster(brokers: brokers, logger: logger)
        for spec in topic {
            let (name, partitions) = try Self.parseTopic(spec)
            try cluster.createTopic(name, partitions: partitions)
            logger.info("created topic", metadata: ["topic": "\(name)", "partitions": "\(partitions)"])
        }
        if let bootstrapFile {
            try (cluster.bootstrapServers + "\n").write(toFile: bootstrapFile, atomically: true, encoding: .utf8)
        }
        print(cluster.bootstrapServers)
        fflush(nil)
        try await ServiceGroup(configuration: .init(services: [.init(service: StopOnShutdown { cluster.stop() })],
                                                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
        logger.info("embedded cluster stopped")
    }
}
