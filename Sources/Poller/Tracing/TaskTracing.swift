import NIOConcurrencyHelpers
import Tracing

/// A span per task (swift-distributed-tracing), for `ezpoll run` with an OTLP exporter
/// (`OTEL_*`): named `ezpoll.task`, a child of the input record's `traceparent` (its
/// `tracestate` kept), from the moment the record entered Kafka to the moment its output was
/// acknowledged, with an event per poll (its outcome class and call time) and one when the
/// result was known. Attributes: `ezpoll.task_id`, `ezpoll.provider`, `ezpoll.task_type`,
/// `ezpoll.outcome` (solved or the failure reason), `ezpoll.polls`, and the input's
/// `messaging.kafka.partition` / `messaging.kafka.offset`. The span is made when the task
/// ends, from what was noted on the way, so a task in flight costs a few bytes per poll and
/// no open span; tasks handed to another member leave no span here.
final class TaskTracing: Sendable {
    struct Poll: Sendable {
        var at: Timestamp
        var outcome: String
        var seconds: Double
    }

    struct Ending: Sendable {
        var context: TaskContext
        var outcome: String
        var failed: Bool
        var polls: Int
        var resolvedAt: Timestamp
    }

    private struct State {
        var polls: [TaskHandle: [Poll]] = [:]
        var endings: [TaskHandle: Ending] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let tracer: any Tracer

    init(tracer: any Tracer) {
        self.tracer = tracer
    }

    func polled(_ handle: TaskHandle, outcome: String, at: Timestamp, seconds: Double) {
        state.withLockedValue { $0.polls[handle, default: []].append(Poll(at: at, outcome: outcome, seconds: seconds)) }
    }

    /// The task's result is being published.
    func ending(_ handle: TaskHandle, _ ending: Ending) {
        state.withLockedValue { $0.endings[handle] = ending }
    }

    /// Its output was acknowledged: the span, ended now.
    func acknowledged(_ handle: TaskHandle, at now: Timestamp) {
        let (polls, ending) = state.withLockedValue { ($0.polls.removeValue(forKey: handle) ?? [], $0.endings.removeValue(forKey: handle)) }
        guard let ending else { return }
        let task = ending.context
        var parent = InstrumentationContext.topLevel
        if let trace = task.trace { tracer.extract(trace.headers, into: &parent, using: HeaderExtractor()) }
        let span = tracer.startSpan("ezpoll.task", context: parent, ofKind: .consumer,
                                    at: EpochInstant(task.source.timestamp ?? task.createdAt))
        span.attributes["ezpoll.task_id"] = task.taskId
        span.attributes["ezpoll.provider"] = task.provider
        if let taskType = task.taskType { span.attributes["ezpoll.task_type"] = taskType }
        span.attributes["ezpoll.outcome"] = ending.outcome
        span.attributes["ezpoll.polls"] = ending.polls
        span.attributes["messaging.kafka.partition"] = Int(task.source.partition)
        span.attributes["messaging.kafka.offset"] = Int(task.source.offset)
        for poll in polls {
            span.addEvent(SpanEvent(name: "poll", at: EpochInstant(poll.at),
                                    attributes: ["ezpoll.outcome": .string(poll.outcome), "ezpoll.call_seconds": .double(poll.seconds)]))
        }
        span.addEvent(SpanEvent(name: ending.failed ? "failed" : "solved", at: EpochInstant(ending.resolvedAt)))
        if ending.failed { span.setStatus(SpanStatus(code: .error, message: ending.outcome)) }
        span.end(at: EpochInstant(now))
    }

    /// Forgets what was noted for tasks no longer held (handed to another member).
    func forget(unless held: (TaskHandle) -> Bool) {
        state.withLockedValue { state in
            state.polls = state.polls.filter { held($0.key) }
            state.endings = state.endings.filter { held($0.key) }
        }
    }

    /// The tasks with notes.
    var notedHandles: [TaskHandle] { state.withLockedValue { Array($0.polls.keys) + Array($0.endings.keys) } }
}

/// Whether task spans are exported: only when the standard OpenTelemetry variables ask for
/// it (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
/// `OTEL_TRACES_EXPORTER=otlp`), never with `OTEL_SDK_DISABLED=true` or
/// `OTEL_TRACES_EXPORTER=none`.
public enum TaskSpans {
    public static func wanted(environment env: [String: String]) -> Bool {
        if env["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
        if let exporter = env["OTEL_TRACES_EXPORTER"]?.lowercased() { return exporter == "otlp" }
        return env["OTEL_EXPORTER_OTLP_ENDPOINT"] != nil || env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != nil
    }
}

/// A wall-clock time as swift-distributed-tracing takes it.
struct EpochInstant: TracerInstant {
    var nanosecondsSinceEpoch: UInt64

    init(_ timestamp: Timestamp) {
        nanosecondsSinceEpoch = UInt64(max(0, timestamp.millisecondsSinceEpoch)) * 1_000_000
    }

    static func < (lhs: EpochInstant, rhs: EpochInstant) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
}

/// Reads `traceparent` / `tracestate` from the input record's kept trace context.
struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: [(name: String, value: String)]) -> String? {
        carrier.last { $0.name.lowercased() == key.lowercased() }?.value
    }
}
