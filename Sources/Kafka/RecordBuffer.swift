import Foundation

/// The hand-off between a consumer's polling thread and the application: a few
/// batches of records, bounded. The polling thread waits (on a condition variable,
/// not a sleep) when the application falls behind; the application awaits batches.
final class RecordBuffer: @unchecked Sendable {
    private let condition = NSCondition()
    private var batches: [[KafkaRecord]] = []
    private var head = 0
    private var waiter: CheckedContinuation<[KafkaRecord]?, Never>?
    private var finished = false
    private(set) var closeRequested = false
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    private var count: Int { batches.count - head }

    /// Polling thread: hands a batch over (directly to a waiting reader when there is one).
    func push(_ batch: [KafkaRecord]) {
        condition.lock()
        if finished {
            condition.unlock()
            return
        }
        if let waiter {
            self.waiter = nil
            condition.unlock()
            waiter.resume(returning: batch)
            return
        }
        batches.append(batch)
        condition.unlock()
    }

    /// Polling thread: waits until there is room or a close was requested, at most
    /// `timeout` seconds, so the caller can go back to serving librdkafka.
    func waitForRoom(timeout: TimeInterval) {
        condition.lock()
        defer { condition.unlock() }
        let until = Date(timeIntervalSinceNow: timeout)
        while count >= capacity && !closeRequested {
            if !condition.wait(until: until) { return }
        }
    }

    /// Application: the next batch, or nil once the consumer is closed.
    func next() async -> [KafkaRecord]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[KafkaRecord]?, Never>) in
                condition.lock()
                if count > 0 {
                    let batch = batches[head]
                    head += 1
                    if head == batches.count {
                        batches.removeAll(keepingCapacity: true)
                        head = 0
                    }
                    condition.broadcast()
                    condition.unlock()
                    continuation.resume(returning: batch)
                } else if finished || Task.isCancelled {
                    condition.unlock()
                    continuation.resume(returning: nil)
                } else {
                    precondition(waiter == nil, "KafkaConsumer.batches supports one reader at a time")
                    waiter = continuation
                    condition.unlock()
                }
            }
        } onCancel: {
            condition.lock()
            let waiter = self.waiter
            self.waiter = nil
            condition.unlock()
            waiter?.resume(returning: nil)
        }
    }

    /// Rebalance: drops buffered records of partitions that were just revoked.
    func removeRecords(of partitions: Set<TopicPartition>) {
        condition.lock()
        defer { condition.unlock() }
        guard count > 0 else { return }
        var kept: [[KafkaRecord]] = []
        for batch in batches[head...] {
            let filtered = batch.filter { !partitions.contains($0.topicPartition) }
            if !filtered.isEmpty { kept.append(filtered) }
        }
        batches = kept
        head = 0
        condition.broadcast()
    }

    /// Asks the polling thread to stop and wakes it.
    func requestClose() {
        condition.lock()
        closeRequested = true
        condition.broadcast()
        condition.unlock()
    }

    var isCloseRequested: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closeRequested
    }

    /// Ends the sequence: buffered batches are dropped, a waiting reader gets nil.
    func finish() {
        condition.lock()
        finished = true
        batches.removeAll()
        head = 0
        let waiter = self.waiter
        self.waiter = nil
        condition.broadcast()
        condition.unlock()
        waiter?.resume(returning: nil)
    }
}
