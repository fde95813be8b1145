import Foundation
import Kafka
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskAPI

// Pipeline: consumer batches → decode → the engine.
extension Pipeline {
    /// The W3C trace context of a record's headers (the last of each name wins), if well formed.
    static func traceContext(of headers: [KafkaHeader]) -> TraceContext? {
        guard !headers.isEmpty else { return nil }
        var parent: [UInt8]?
        var state: [UInt8]?
        for header in headers {
            if header.name == TraceContext.traceparentHeader { parent = header.value }
            if header.name == TraceContext.tracestateHeader { state = header.value }
        }
        return parent == nil ? nil : TraceContext(traceparent: parent, tracestate: state)
    }

    func ingestLoop() async {
        while let batch = await consumer.nextBatch() {
            if stopRequested.isSet { continue } // left untracked: the next owner reads them
            counters.consumed(batch.count)
            metrics.consumed(batch)
            let now = WallClock.now()
            let actions = withEngine { engine in
                var actions: [PollingEngine.Action] = []
                for record in batch {
                    let source = MessageSource(topic: record.topic, partition: record.partition, offset: record.offset,
                                               timestamp: record.timestampMs.map { Timestamp(millisecondsSinceEpoch: $0) })
                    actions += engine.receive(InputRecord(source: source, key: record.key, value: record.value,
                                                          trace: Self.traceContext(of: record.headers)), now: now)
                }
                return actions
            }
            wakeup.signal()
            await performAsync(actions)
        }
    }
}
