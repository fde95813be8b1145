import Foundation

/// The hand-off between a consumer's polling thread and the application: a few
/// batches of records, bounded in batches and in bytes (keys, values, headers), so
/// large values cannot pile up. The polling thread waits (on a condition variable,
/// not a sleep) when the application falls behind; the application awaits batches.
// @unchecked: every var is guarded by `condition`, an NSCondition (the polling thread
// must block on it in `waitForRoom`), and the compiler cannot see that guarding.
final class RecordBuffer: @unchecked Sendable {
    private let condition = NSCondition()
    private var batches: [(records: [KafkaRecord], bytes: Int)] = []
    private var head = 0
    private var bytes = 0
    private var waiter: CheckedContinuation<[KafkaRecord]?, Never>?
    private var finished = false
    private(set) var closeRequested = false
    private let capacity: Int
    private let maxBytes: Int

    /// `capacity` batches and `maxBytes` bytes at most; one batch is always let in,
    /// however large, so a single oversized record cannot stall the consumer.
    init(capacity: Int, maxBytes: Int = .max) {
        self.capacity = max(1, capacity)
        self.maxBytes = max(1, maxBytes)
    }

    private var count: Int { batches.count - head }

    var isFull: Bool {
        condition.lock()
        defer { condition.unlock() }
        return isFullLocked
    }

    private var isFullLocked: Bool { count >= capacity || (count > 0 && bytes >= maxBytes) }

    static func size(of batch: [KafkaRecord]) -> Int {
        batch.reduce(0) { total, record in
            total + (record.key?.count ?? 0) + (record.value?.count ?? 0)
                + record.headers.reduce(0) { $0 + $1.name.utf8.count + ($1.value?.count ?? 0) }
        }
    }

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
        let size = Self.size(of: batch)
        batches.append((batch, size))
        bytes += size
        condition.unlock()
    }

    /// Polling thread: waits until there is room or a close was requested, at most
    /// `timeout` seconds, so the caller can go back to serving librdkafka.
    func waitForRoom(timeout: TimeInterval) {
        condition.lock()
        defer { condition.unlock() }
        let until = Date(timeIntervalSinceNow: timeout)
        while isFullLocked && !closeRequested {
            if !condition.wait(until: until) { return }
        }
    }

    /// Application: the next batch, or nil once the consumer is closed.
    func next() async -> [KafkaRecord]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[KafkaRecord]?, Never>) in
                condition.lock()
                if count > 0 {
                    let (batch, size) = batches[head]
                    head += 1
                    bytes -= size
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
        var kept: [(records: [KafkaRecord], bytes: Int)] = []
        for (batch, _) in batches[head...] {
            let filtered = batch.filter { !partitions.contains($0.topicPartition) }
            if !filtered.isEmpty { kept.append((filtered, Self.size(of: filtered))) }
        }
        batches = kept
        bytes = kept.reduce(0) { $0 + $1.bytes }
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
        bytes = 0
        head = 0
        let waiter = self.waiter
        self.waiter = nil
        condition.broadcast()
        condition.unlock()
        waiter?.resume(returning: nil)
    }
}
