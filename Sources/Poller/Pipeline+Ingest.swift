import Foundation
import Kafka
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskAPI

// Pipeline: consumer batches → decode → the engine.
extension Pipeline {
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
                    actions += engine.receive(InputRecord(source: source, key: record.key, value: record.value), now: now)
                }
                return actions
            }
            wakeup.signal()
            await performAsync(actions)
        }
    }
}
