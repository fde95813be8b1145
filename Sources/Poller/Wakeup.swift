import Foundation
import NIOConcurrencyHelpers

/// Wakes the dispatcher when there is new work (a task ingested, a call finished)
/// or when the next poll is due, whichever comes first. A signal that arrives while
/// nobody waits is kept, so it is never lost.
final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var waitID: UInt64 = 0
        /// When the waiter wakes anyway; nil: only on a signal.
        var deadline: Timestamp?
    }

    private let state = NIOLockedValueBox(State())
    private let timerQueue = DispatchQueue(label: "ezpoll.dispatch-timer")

    func signal() {
        signal(ifDueBefore: nil, always: true)
    }

    /// Signals only when work is due (`due`) before the waiter would wake anyway: a call
    /// that completes while the dispatcher sleeps until a later poll need not wake it.
    /// With nobody waiting the signal is kept (the dispatcher is mid-tick).
    func signal(ifDueBefore due: Timestamp?) {
        guard due != nil else { return }
        signal(ifDueBefore: due, always: false)
    }

    private func signal(ifDueBefore due: Timestamp?, always: Bool) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            if !always, let due, let deadline = state.deadline, deadline <= due { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns on a signal, or at `deadline` (wall clock); nil waits for a signal only.
    func wait(until deadline: Timestamp?) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let delayMs = deadline.map { $0.millisecondsSinceEpoch - WallClock.now().millisecondsSinceEpoch }
            let timer = state.withLockedValue { state -> UInt64? in
                if state.pending {
                    state.pending = false
                    return nil
                }
                if let delayMs, delayMs <= 0 { return nil }
                state.waitID &+= 1
                state.waiter = continuation
                state.deadline = deadline
                return state.waitID
            }
            guard let timer else { return continuation.resume() }
            if let delayMs {
                timerQueue.asyncAfter(deadline: .now() + .milliseconds(Int(min(delayMs, 3_600_000)))) { [weak self] in
                    self?.fire(timer)
                }
            }
        }
    }

    private func fire(_ id: UInt64) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard state.waitID == id, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
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
