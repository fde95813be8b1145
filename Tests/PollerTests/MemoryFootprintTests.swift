import Testing
@testable import Poller
@testable import PollerCore

@Suite struct MemoryFootprintTests {
    /// The benchmark budget is 1 KiB of RSS per in-flight task for the whole
    /// process; the engine's inline share must stay a fraction of that.
    @Test func perTaskInlineStateIsSmall() {
        print("footprint: TaskState \(MemoryLayout<PollingEngine.TaskState>.stride) B, TaskContext \(MemoryLayout<TaskContext>.stride) B, token \(MemoryLayout<OffsetTracker.Token>.stride) B, slot \(MemoryLayout<PollScheduler.Slot>.stride) B, heap entry \(MemoryLayout<PollScheduler.Entry>.stride) B")
        #expect(MemoryLayout<PollingEngine.TaskState>.stride <= 320)
    }
}
