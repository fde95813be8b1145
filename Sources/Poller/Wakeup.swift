import Foundation

/// Wakes the dispatcher when there is new work (a task ingested, a call finished)
/// or when the next poll is due, whichever comes first. A signal that arrives while
/// nobody waits is kept, so it is never lost.
final class Wakeup: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?
    private var waitID: UInt64 = 0
    private let timerQueue = DispatchQueue(label: "ezpoll.dispatch-timer")

    func signal() {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume()
        } else {
            pending = true
            lock.unlock()
        }
    }

    /// Returns on a signal, or at `deadline` (wall clock); nil waits for a signal only.
    func wait(until deadline: Timestamp?) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if pending {
                pending = false
                lock.unlock()
                continuation.resume()
                return
            }
            let delayMs = deadline.map { $0.millisecondsSinceEpoch - WallClock.now().millisecondsSinceEpoch }
            if let delayMs, delayMs <= 0 {
                lock.unlock()
                continuation.resume()
                return
            }
            waitID &+= 1
            let id = waitID
            waiter = continuation
            lock.unlock()
            if let delayMs {
                timerQueue.asyncAfter(deadline: .now() + .milliseconds(Int(min(delayMs, 3_600_000)))) { [weak self] in
                    self?.fire(id)
                }
            }
        }
    }

    private func fire(_ id: UInt64) {
        lock.lock()
        guard waitID == id, let waiter else {
            lock.unlock()
            return
        }
        self.waiter = nil
        lock.unlock()
        waiter.resume()
    }
}

/// Wall-clock time for the driver; the core never reads a clock.
public enum WallClock {
    public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(millisecondsSinceEpoch: Int64(ts.tv_sec) * 1_000 + Int64(ts.tv_nsec) / 1_000_000)
    }
}
