// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "ezpoll",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ezpoll", targets: ["ezpoll"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // OTLP export of the task spans (`OTEL_*`): over HTTP only, so no gRPC stack is built.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        // Tests only: random-input properties of the hand-written codecs.
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // librdkafka from Debian's librdkafka-dev, found through pkg-config.
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // The Swift face of librdkafka. All C calls live in its `RDKafka/` folder.
        .target(
            name: "Kafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // A span per task (`TaskTracing`), through whatever tracer the process bootstraps.
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // librdkafka's mock cluster as an in-process broker, for tests, `broker`, `demo`
        // and `bench`; production never links it into its Kafka path.
        .target(
            name: "EmbeddedKafka",
            dependencies: [
                "Kafka",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The getTaskResult protocol's values: request and response models, provider
        // profiles, outcomes, keys, the one JSON scanner and escaper. No I/O.
        .target(
            name: "TaskModel",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The getTaskResult client (our HTTP/1.1 pool on SwiftNIO, or async-http-client)
        // and the classification of its answers.
        .target(
            name: "TaskAPI",
            dependencies: [
                "TaskModel",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        // A faithful fake of the provider API on a real loopback HTTP server.
        .target(
            name: "Simulator",
            dependencies: [
                "TaskAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                // Sends the provider callbacks.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // The pure core: engine, scheduler, policy, limits, offset tracker, message models
        // and codecs, time. State machines that take `now` and return actions; no I/O,
        // no Kafka, no HTTP client, no NIO (the compiler keeps it that way).
        .target(
            name: "PollerCore",
            dependencies: [
                "TaskModel",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        // The driver around the core: pipeline wiring (consumer, HTTP calls, publisher,
        // commits, rebalances), wake-ups, counters, metrics and health.
        .target(
            name: "Poller",
            dependencies: [
                "PollerCore",
                "Kafka",
                "TaskAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // Observability: metrics facade, Prometheus registry, the /metrics + /health HTTP server.
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // `ezpoll bench`'s harness: the embedded cluster, the simulator, a load generator,
        // the pipeline and an output collector in one process, and its report.
        .target(
            name: "Bench",
            dependencies: [
                "Poller",
                "Kafka",
                "EmbeddedKafka",
                "TaskAPI",
                "Simulator",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .executableTarget(
            name: "ezpoll",
            dependencies: [
                "Bench",
                "Kafka",
                "EmbeddedKafka",
                "TaskAPI",
                "Simulator",
                "Poller",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                // `ezpoll run`'s OTLP span exporter, when `OTEL_*` asks for one.
                .product(name: "OTel", package: "swift-otel"),
            ]
        ),
        // Helpers shared by the test targets (waiting on conditions, locked values).
        .target(name: "TestSupport", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Tests/TestSupport"),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "EmbeddedKafka", "TestSupport"]),
        .testTarget(
            name: "TaskAPITests",
            dependencies: [
                "TaskAPI",
                "TaskModel",
                "Simulator",
                "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "PollerTests",
            dependencies: [
                "Poller", "PollerCore", "Kafka", "EmbeddedKafka", "TaskAPI", "TaskModel", "Simulator", "TestSupport",
                // HTTP GETs against the observability port.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // Packaging checks (docker-compose.yml against the Compose schema, options that exist,
        // the README's settings table). It reads files, runs python3 + the built ezpoll binary,
        // and imports ezpoll's own module (built for the binary anyway) to resolve `run`'s
        // settings the way `run` does.
        .testTarget(
            name: "PackagingTests",
            dependencies: ["ezpoll", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            exclude: [
                "compose-spec.json", "check_compose.py", "check_deploy.py", "prometheus-rules-test.yaml",
                "keda-scaledobject.schema.json",
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Micro-benchmarks of the hand-written codecs (BENCHMARKS.md). Built only on request,
// never by `swift build --build-tests` or the test command:
//   EZPOLL_BENCHMARKS=1 swift run -c release JSONBench
if Context.environment["EZPOLL_BENCHMARKS"] != nil {
    package.targets.append(
        .executableTarget(name: "JSONBench", dependencies: ["PollerCore", "TaskModel"], path: "Benchmarks/JSONBench")
    )
}
