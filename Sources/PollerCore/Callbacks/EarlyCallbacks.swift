import DequeModule

/// Callbacks that came before their task's event was read (the event still waits in
/// Kafka behind a backlog, or this member only just got its partition): remembered, at
/// most `capacity` of them and none older than `maxAge`, so the task's first poll is at
/// once when its event arrives instead of at the safety schedule's first poll.
///
/// Oldest first out: a flood of callbacks for ids that never come evicts real ones,
/// which then wait for their safety poll, and grows nothing. About 100 bytes each.
struct EarlyCallbacks: Sendable {
    let capacity: Int
    let maxAge: Duration
    private var arrivals = Deque<(key: CallbackKey, at: Timestamp)>()
    private var remembered: [CallbackKey: Timestamp] = [:]

    init(capacity: Int, maxAge: Duration) {
        self.capacity = max(0, capacity)
        self.maxAge = maxAge
    }

    var count: Int { remembered.count }

    /// Remembers a callback for a task not in flight; false when it was already remembered.
    mutating func remember(_ key: CallbackKey, now: Timestamp) -> Bool {
        forgetOld(now: now)
        guard capacity > 0, remembered[key] == nil else { return false }
        while remembered.count >= capacity, let oldest = arrivals.popFirst() {
            if remembered[oldest.key] == oldest.at { remembered[oldest.key] = nil }
        }
        remembered[key] = now
        arrivals.append((key, now))
        return true
    }

    /// Whether a callback for `key` came before it, forgetting it.
    mutating func take(_ key: CallbackKey, now: Timestamp) -> Bool {
        guard let at = remembered.removeValue(forKey: key) else { return false }
        return now - at <= maxAge
    }

    private mutating func forgetOld(now: Timestamp) {
        while let oldest = arrivals.first, now - oldest.at > maxAge {
            arrivals.removeFirst()
            if remembered[oldest.key] == oldest.at { remembered[oldest.key] = nil }
        }
    }
}
