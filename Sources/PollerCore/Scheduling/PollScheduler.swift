import HeapModule

/// Next-poll times for every in-flight task: a binary min-heap of
/// `(due, slot, stamp)` entries with lazy deletion, and a second heap of the tasks
/// already due, ordered by priority (the task's deadline).
///
/// While every due task is called at once the second heap stays empty. When the call
/// budget binds, due tasks wait there and the one closest to its deadline goes first:
/// a last poll before a task's result window closes takes priority over another
/// task's tenth poll (and older tasks are the likeliest to be ready).
///
/// Rescheduling or cancelling a task bumps its slot's stamp, which turns any
/// older heap entry of that slot stale; stale entries are dropped when they
/// surface in `popDue`, and the whole heap is rebuilt from the live entries
/// when the stale ones outnumber them, so memory stays bounded.
///
/// Costs: schedule/reschedule O(log n); cancel O(1); `popDue` O(k log n) for k
/// due tasks; `nextDeadline` amortised O(1). Memory per task: 24 bytes of slot
/// state plus 16 bytes per live heap entry (24 while it waits among the due), no
/// per-task allocation.
public struct PollScheduler: Sendable {
    struct Entry: Comparable, Sendable {
        var due: Int64
        var index: UInt32
        var stamp: UInt32

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            // Ties broken by slot index so pops are deterministic.
            lhs.due != rhs.due ? lhs.due < rhs.due : lhs.index < rhs.index
        }
    }

    /// A due task waiting for a call, ordered by priority, then due time.
    struct ReadyEntry: Comparable, Sendable {
        var priority: Int64
        var due: Int64
        var index: UInt32
        var stamp: UInt32

        static func < (lhs: ReadyEntry, rhs: ReadyEntry) -> Bool {
            if lhs.priority != rhs.priority { return lhs.priority < rhs.priority }
            return lhs.due != rhs.due ? lhs.due < rhs.due : lhs.index < rhs.index
        }
    }

    struct Slot: Sendable {
        static let unscheduled = Int64.min
        var due: Int64 = Slot.unscheduled
        /// Lower goes first among due tasks (the task's deadline, ms).
        var priority: Int64 = 0
        var generation: UInt32 = 0
        var stamp: UInt32 = 0
    }

    var heap = Heap<Entry>()
    /// Entries already due, by priority.
    var ready = Heap<ReadyEntry>()
    var slots: [Slot] = []
    public private(set) var scheduledCount = 0

    public init() {}

    /// Schedules `task` at `due`, replacing any earlier schedule of it. Among tasks that
    /// are due, a lower `priority` goes first (nil: the due time itself, i.e. oldest due first).
    public mutating func schedule(_ task: TaskHandle, at due: Timestamp, priority: Timestamp? = nil) {
        let i = Int(task.index)
        if i >= slots.count {
            slots.append(contentsOf: repeatElement(Slot(), count: i - slots.count + 1))
        }
        // A slot still scheduled for an older generation is simply taken over.
        if slots[i].due == Slot.unscheduled { scheduledCount += 1 }
        slots[i].generation = task.generation
        slots[i].stamp &+= 1
        slots[i].due = due.millisecondsSinceEpoch
        slots[i].priority = (priority ?? due).millisecondsSinceEpoch
        heap.insert(Entry(due: due.millisecondsSinceEpoch, index: task.index, stamp: slots[i].stamp))
        compactIfNeeded()
    }

    /// Removes `task`'s schedule; returns whether it had one.
    @discardableResult
    public mutating func cancel(_ task: TaskHandle) -> Bool {
        guard isScheduled(task) else { return false }
        let i = Int(task.index)
        slots[i].stamp &+= 1
        slots[i].due = Slot.unscheduled
        scheduledCount -= 1
        return true
    }

    public func isScheduled(_ task: TaskHandle) -> Bool {
        let i = Int(task.index)
        return i < slots.count && slots[i].generation == task.generation && slots[i].due != Slot.unscheduled
    }

    public func dueTime(of task: TaskHandle) -> Timestamp? {
        isScheduled(task) ? Timestamp(millisecondsSinceEpoch: slots[Int(task.index)].due) : nil
    }

    /// Removes and returns up to `limit` tasks due at or before `now`, earliest first.
    /// A returned task is no longer scheduled.
    public mutating func popDue(now: Timestamp, limit: Int = .max) -> [TaskHandle] {
        var result: [TaskHandle] = []
        while result.count < limit, let handle = popFirstDue(now: now) { result.append(handle) }
        return result
    }

    /// Of the tasks due at or before `now`, the one with the lowest priority, removed
    /// from the schedule; no array allocated.
    public mutating func popFirstDue(now: Timestamp) -> TaskHandle? {
        popFirstDueWithTime(now: now)?.task
    }

    /// `popFirstDue`, with the time the task was due.
    public mutating func popFirstDueWithTime(now: Timestamp) -> (task: TaskHandle, due: Timestamp)? {
        promoteDue(now: now)
        while let top = ready.min {
            ready.removeMin()
            let i = Int(top.index)
            guard slots[i].stamp == top.stamp, slots[i].due != Slot.unscheduled else { continue }
            slots[i].due = Slot.unscheduled
            scheduledCount -= 1
            return (TaskHandle(index: top.index, generation: slots[i].generation), Timestamp(millisecondsSinceEpoch: top.due))
        }
        return nil
    }

    /// Moves the live entries due at or before `now` to the ready heap.
    private mutating func promoteDue(now: Timestamp) {
        while let top = heap.min, top.due <= now.millisecondsSinceEpoch {
            heap.removeMin()
            let slot = slots[Int(top.index)]
            guard slot.stamp == top.stamp, slot.due != Slot.unscheduled else { continue }
            ready.insert(ReadyEntry(priority: slot.priority, due: top.due, index: top.index, stamp: top.stamp))
        }
    }

    /// When the earliest scheduled task is due (a time already past while due tasks wait
    /// for a call); nil if none. The driver sleeps until then (or until new work arrives).
    public mutating func nextDeadline() -> Timestamp? {
        while let top = ready.min {
            let slot = slots[Int(top.index)]
            if slot.stamp == top.stamp, slot.due != Slot.unscheduled {
                return Timestamp(millisecondsSinceEpoch: top.due)
            }
            ready.removeMin()
        }
        while let top = heap.min {
            let slot = slots[Int(top.index)]
            if slot.stamp == top.stamp, slot.due != Slot.unscheduled {
                return Timestamp(millisecondsSinceEpoch: top.due)
            }
            heap.removeMin()
        }
        return nil
    }

    /// Heap entries including stale ones (for tests and memory accounting).
    public var heapCount: Int { heap.count + ready.count }

    private mutating func compactIfNeeded() {
        guard heapCount > 1024, heapCount > 2 * scheduledCount else { return }
        var live: [Entry] = []
        live.reserveCapacity(scheduledCount)
        for (i, slot) in slots.enumerated() where slot.due != Slot.unscheduled {
            live.append(Entry(due: slot.due, index: UInt32(i), stamp: slot.stamp))
        }
        heap = Heap(live)
        ready = Heap() // due entries go back to the due heap; the next pop promotes them again
    }
}
