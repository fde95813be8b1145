import OTel
import Poller
import ServiceLifecycle

/// `ezpoll run`'s span export: off unless the standard OpenTelemetry variables ask for it
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
/// `OTEL_TRACES_EXPORTER=otlp`), and never with `OTEL_SDK_DISABLED=true` or
/// `OTEL_TRACES_EXPORTER=none`. Traces only, over OTLP/HTTP (`OTEL_EXPORTER_OTLP_PROTOCOL`
/// `http/protobuf`, the default, or `http/json`); metrics stay on `/metrics`, logs on stderr.
/// Every other `OTEL_*` variable (sampler, batch processor, headers, service name, ...) is
/// read by swift-otel as the specification says.
enum TaskSpanExport {
    static func wanted(environment env: [String: String]) -> Bool { TaskSpans.wanted(environment: env) }

    /// Bootstraps the process's tracer (once per process) and returns the exporter's service,
    /// to run before the pipeline and stop after it, so its last spans are sent.
    static func bootstrap(environment env: [String: String]) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "ezpoll"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        return try OTel.bootstrap(configuration: configuration, environment: env)
    }
}
