import DequeModule
import NIOConcurrencyHelpers
import NIOCore

/// The whole-call deadline, kept above the transports: every call started through
/// `TaskResultClient` ends by `deadline` (plus one tick) with its own outcome or, if the
/// transport has not answered by then, with a transient timeout — whatever the HTTP
/// client, a slow peer (one body byte every few seconds never trips a read timeout) or a
/// stuck connection does. A late answer after that is dropped; the transport's work is
/// cancelled where it can be (async-http-client's task).
///
/// Cost per call: one dictionary insert and one removal under a lock. Deadlines are
/// grouped in slots of one tick, swept in order, so a sweep touches only expired slots.
final class CallDeadlines: Sendable {
    typealias Completion = @Sendable (TaskOutcome) -> Void

    struct Ticket: Sendable, Hashable {
        fileprivate let id: UInt64
    }

    private struct Entry {
        var completion: Completion
        var cancel: (@Sendable () -> Void)?
    }

    private struct State {
        var nextID: UInt64 = 0
        var pending: [UInt64: Entry] = [:]
        /// Tickets by the tick their deadline falls in, oldest first.
        var slots: Deque<(due: UInt64, ids: [UInt64])> = []
        var isShutDown = false
    }

    let timeout: TimeAmount
    private let tick: TimeAmount
    private let state = NIOLockedValueBox(State())
    private let sweeper: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)

    init(timeout: TimeAmount, tick: TimeAmount = .milliseconds(100), on loop: any EventLoop) {
        self.timeout = timeout
        self.tick = tick
        let task = loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [weak self] _ in
            self?.sweep(now: .now())
        }
        sweeper.withLockedValue { $0 = task }
    }

    /// Calls in progress (started, neither answered nor expired).
    var inProgress: Int { state.withLockedValue { $0.pending.count } }

    /// Starts the clock for each completion; each runs exactly once, through `complete`
    /// or at its deadline. After `shutdown()` the completions run at once as `shutDownOutcome`.
    func register(_ completions: [Completion], now: NIODeadline = .now()) -> [Ticket] {
        let due = slot(of: now + timeout)
        let tickets: [Ticket]? = state.withLockedValue { s in
            guard !s.isShutDown else { return nil }
            var ids: [UInt64] = []
            ids.reserveCapacity(completions.count)
            for completion in completions {
                let id = s.nextID
                s.nextID += 1
                s.pending[id] = Entry(completion: completion)
                ids.append(id)
            }
            if let last = s.slots.last, last.due == due {
                s.slots[s.slots.count - 1].ids.append(contentsOf: ids)
            } else {
                s.slots.append((due, ids))
            }
            return ids.map(Ticket.init)
        }
        guard let tickets else {
            for completion in completions { completion(Self.shutDownOutcome) }
            return []
        }
        return tickets
    }

    /// What to cancel if the call outlives its deadline (ignored if it already ended).
    func onExpiry(_ ticket: Ticket, cancel: @escaping @Sendable () -> Void) {
        state.withLockedValue { s in s.pending[ticket.id]?.cancel = cancel }
    }

    /// The transport's answer: delivered unless the deadline already ended the call.
    func complete(_ ticket: Ticket, _ outcome: TaskOutcome) {
        guard let entry = state.withLockedValue({ $0.pending.removeValue(forKey: ticket.id) }) else { return }
        entry.completion(outcome)
    }

    /// Ends the calls whose deadline passed.
    func sweep(now: NIODeadline) {
        let current = UInt64(now.uptimeNanoseconds)
        let expired: [Entry] = state.withLockedValue { s in
            var expired: [Entry] = []
            while let first = s.slots.first, first.due <= current {
                s.slots.removeFirst()
                for id in first.ids {
                    if let entry = s.pending.removeValue(forKey: id) { expired.append(entry) }
                }
            }
            return expired
        }
        for entry in expired {
            entry.completion(expiredOutcome)
            entry.cancel?()
        }
    }

    /// Stops the clock; calls still pending end now as connection failures.
    func shutdown() {
        sweeper.withLockedValue { $0?.cancel() }
        let pending: [Entry] = state.withLockedValue { s in
            s.isShutDown = true
            defer { s.pending.removeAll(); s.slots.removeAll() }
            return Array(s.pending.values)
        }
        for entry in pending {
            entry.completion(Self.shutDownOutcome)
            entry.cancel?()
        }
    }

    /// The first tick boundary at or after `deadline`, so a sweep ends a call at most one
    /// tick late and never early.
    private func slot(of deadline: NIODeadline) -> UInt64 {
        let tick = UInt64(self.tick.nanoseconds)
        let at = UInt64(deadline.uptimeNanoseconds)
        return (at + tick - 1) / tick * tick
    }

    private var expiredOutcome: TaskOutcome {
        .failed(.transient(.timeout, retryAfter: nil), code: TaskOutcome.LocalCode.timeout,
                description: "no answer within the call deadline (\(timeout.nanoseconds / 1_000_000) ms)")
    }

    static let shutDownOutcome = TaskOutcome.failed(.transient(.connection, retryAfter: nil),
                                                    code: TaskOutcome.LocalCode.connection, description: "client shut down")
}
