import Testing
@testable import Poller
@testable import PollerCore

@Suite struct PollSchedulerTests {
    @Test func popsInDueOrderAndOnlyWhenDue() {
        var scheduler = PollScheduler()
        let a = TaskHandle(index: 0, generation: 0)
        let b = TaskHandle(index: 1, generation: 0)
        let c = TaskHandle(index: 2, generation: 0)
        scheduler.schedule(a, at: t(3))
        scheduler.schedule(b, at: t(1))
        scheduler.schedule(c, at: t(2))
        #expect(scheduler.nextDeadline() == t(1))
        #expect(scheduler.popDue(now: t(0.5)).isEmpty)
        #expect(scheduler.popDue(now: t(2)) == [b, c])
        #expect(scheduler.nextDeadline() == t(3))
        #expect(scheduler.popDue(now: t(10)) == [a])
        #expect(scheduler.nextDeadline() == nil)
        #expect(scheduler.scheduledCount == 0)
    }

    @Test func rescheduleReplacesTheOldTime() {
        var scheduler = PollScheduler()
        let a = TaskHandle(index: 4, generation: 1)
        scheduler.schedule(a, at: t(1))
        scheduler.schedule(a, at: t(5))
        #expect(scheduler.scheduledCount == 1)
        #expect(scheduler.popDue(now: t(2)).isEmpty)
        #expect(scheduler.dueTime(of: a) == t(5))
        #expect(scheduler.popDue(now: t(5)) == [a])
        #expect(scheduler.popDue(now: t(100)).isEmpty)
    }

    @Test func cancelAndStaleGenerations() {
        var scheduler = PollScheduler()
        let a = TaskHandle(index: 0, generation: 0)
        scheduler.schedule(a, at: t(1))
        let first = scheduler.cancel(a)
        let second = scheduler.cancel(a)
        #expect(first && !second)
        #expect(scheduler.nextDeadline() == nil)
        // The slot's next occupant: the old handle is not scheduled.
        let reused = TaskHandle(index: 0, generation: 1)
        scheduler.schedule(reused, at: t(2))
        #expect(!scheduler.isScheduled(a))
        let stale = scheduler.cancel(a)
        #expect(!stale)
        #expect(scheduler.popDue(now: t(3)) == [reused])
    }

    @Test func popFirstDueSkipsStaleEntries() {
        var scheduler = PollScheduler()
        let a = TaskHandle(index: 0, generation: 0)
        let b = TaskHandle(index: 1, generation: 0)
        scheduler.schedule(a, at: t(1))
        scheduler.schedule(b, at: t(2))
        scheduler.schedule(a, at: t(3))
        #expect(scheduler.popFirstDue(now: t(2.5)) == b)
        #expect(scheduler.popFirstDue(now: t(2.5)) == nil)
        #expect(scheduler.popFirstDue(now: t(3)) == a)
        #expect(scheduler.scheduledCount == 0)
    }

    @Test func limitBoundsOneBatch() {
        var scheduler = PollScheduler()
        for i in 0..<10 { scheduler.schedule(TaskHandle(index: UInt32(i), generation: 0), at: t(1)) }
        #expect(scheduler.popDue(now: t(1), limit: 4).count == 4)
        #expect(scheduler.popDue(now: t(1), limit: 100).count == 6)
    }

    @Test func twoHundredThousandTasksWithReschedulesAndCancels() {
        let n = 200_000
        var scheduler = PollScheduler()
        var random = SeededRandom(seed: 1)
        var expectedDue = [Int64?](repeating: nil, count: n)
        for i in 0..<n {
            let due = Int64.random(in: 0..<300_000, using: &random)
            scheduler.schedule(TaskHandle(index: UInt32(i), generation: 0), at: Timestamp(millisecondsSinceEpoch: due))
            expectedDue[i] = due
        }
        // Reschedule half, cancel a tenth: lazy deletion must hide every stale entry.
        for i in stride(from: 0, to: n, by: 2) {
            let due = Int64.random(in: 0..<300_000, using: &random)
            scheduler.schedule(TaskHandle(index: UInt32(i), generation: 0), at: Timestamp(millisecondsSinceEpoch: due))
            expectedDue[i] = due
        }
        for i in stride(from: 1, to: n, by: 10) {
            scheduler.cancel(TaskHandle(index: UInt32(i), generation: 0))
            expectedDue[i] = nil
        }
        let live = expectedDue.compactMap { $0 }.count
        #expect(scheduler.scheduledCount == live)
        #expect(scheduler.heapCount <= 2 * live + 1024)

        var popped = 0
        var previous = Int64.min
        var now: Int64 = 0
        var seen = [Bool](repeating: false, count: n)
        while let next = scheduler.nextDeadline() {
            now = next.millisecondsSinceEpoch + 500
            for handle in scheduler.popDue(now: Timestamp(millisecondsSinceEpoch: now), limit: 1000) {
                let due = expectedDue[Int(handle.index)]
                #expect(due != nil && due! <= now)
                #expect(due! >= previous)
                #expect(!seen[Int(handle.index)])
                seen[Int(handle.index)] = true
                previous = due!
                popped += 1
            }
        }
        #expect(popped == live)
        #expect(scheduler.scheduledCount == 0)
    }

    @Test func memoryPerTaskStaysSmall() {
        #expect(MemoryLayout<PollScheduler.Entry>.stride == 16)
        // 8 bytes more than before deadline-first ordering: the slot keeps its priority.
        #expect(MemoryLayout<PollScheduler.Slot>.stride == 24)
        #expect(MemoryLayout<PollScheduler.ReadyEntry>.stride == 24)
        #expect(MemoryLayout<TaskHandle>.stride == 8)
    }
}

@Suite struct InFlightTableTests {
    @Test func slotsAreReusedWithNewGenerations() {
        var table = InFlightTable<String>()
        let a = table.insert("a")
        let b = table.insert("b")
        #expect(table.count == 2)
        #expect(table.remove(a) == "a")
        #expect(table[a] == nil)
        let c = table.insert("c")
        #expect(c.index == a.index)
        #expect(c.generation != a.generation)
        #expect(table[c] == "c")
        #expect(table.remove(a) == nil)
        let updated = table.update(b) { $0 += "!" }
        #expect(updated)
        #expect(table[b] == "b!")
        #expect(Set(table.handles) == [b, c])
    }
}

@Suite struct DuePriorityTests {
    @Test func amongDueTasksTheLowestPriorityGoesFirst() {
        var scheduler = PollScheduler()
        let a = TaskHandle(index: 0, generation: 0)
        let b = TaskHandle(index: 1, generation: 0)
        let c = TaskHandle(index: 2, generation: 0)
        scheduler.schedule(a, at: t(1), priority: t(100))
        scheduler.schedule(b, at: t(2), priority: t(50))
        scheduler.schedule(c, at: t(10), priority: t(1))
        // Only a is due: it goes, whatever the others' priority.
        #expect(scheduler.popFirstDueWithTime(now: t(1.5))?.task == a)
        scheduler.schedule(a, at: t(1), priority: t(100))
        // a and b are due: b is closer to its deadline; c is not due yet.
        #expect(scheduler.popFirstDueWithTime(now: t(3))?.task == b)
        #expect(scheduler.popFirstDueWithTime(now: t(3))?.task == a)
        #expect(scheduler.popFirstDueWithTime(now: t(3)) == nil)
        #expect(scheduler.nextDeadline() == t(10))
    }

    @Test func aRescheduledOrCancelledDueTaskLeavesTheLine() {
        var scheduler = PollScheduler()
        let a = TaskHandle(index: 0, generation: 0)
        let b = TaskHandle(index: 1, generation: 0)
        scheduler.schedule(a, at: t(1), priority: t(5))
        scheduler.schedule(b, at: t(1), priority: t(6))
        _ = scheduler.nextDeadline()
        #expect(scheduler.popFirstDueWithTime(now: t(2))?.task == a) // b now waits among the due
        scheduler.schedule(b, at: t(9), priority: t(6))
        #expect(scheduler.popFirstDueWithTime(now: t(2)) == nil, "rescheduled past now")
        #expect(scheduler.nextDeadline() == t(9))
        scheduler.cancel(b)
        #expect(scheduler.nextDeadline() == nil)
        #expect(scheduler.scheduledCount == 0)
    }
}

@Suite struct DeadlineFirstTests {
    @Test func whenTheBudgetBindsALastPollBeforeTheDeadlineGoesFirst() {
        var h = EngineHarness(configuration: config {
            $0.rateLimit = 1
            $0.burst = 1
        }, start: t(1_000))
        // Five fresh tasks, then one created 292 s ago: its window (300 s, 5 s margin) closes in 3 s.
        for i in 0..<5 { h.receive(#"{"taskId":"fresh\#(i)"}"#, createdAt: t(995)) }
        h.script["old"] = [solved]
        h.receive(#"{"taskId":"old"}"#, createdAt: t(708))
        h.apply(h.engine.tick(now: h.now))
        #expect(h.pendingCalls.map(\.1) == ["old"], "one token: the task about to expire takes it")
        h.step() // answers it: ready
        #expect(h.solutions["old"] != nil, "solved before its window closed")
    }
}
