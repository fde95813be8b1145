import Foundation
import Kafka
import Simulator
import TaskAPI

/// Creates tasks on the simulator and publishes their events at a target rate,
/// holding back (and counting what it held back) while the pipeline's input lag
/// is above `maxLag` records, so the mock cluster never drops unread data.
final class BenchLoadGenerator {
    struct Result: Sendable {
        var created = 0
        /// Tasks not created because the input backlog was over the limit.
        var heldBack = 0
        var maxLag = 0
        var elapsed: Double = 0
        var offeredRate: Double { elapsed > 0 ? Double(created) / elapsed : 0 }
    }

    let simulator: SimulatorServer
    let producer: KafkaProducer
    let topic: String
    let rate: Double
    let timeScale: Double
    let solveTime: SimulatorConfig.SolveTimeDistribution
    let book: BenchTaskBook
    let maxLag: Int
    let consumed: @Sendable () -> Int
    private var random: SplitMix64

    init(simulator: SimulatorServer, producer: KafkaProducer, topic: String, rate: Double, timeScale: Double,
         solveTime: SimulatorConfig.SolveTimeDistribution, book: BenchTaskBook, maxLag: Int, seed: UInt64,
         consumed: @escaping @Sendable () -> Int) {
        self.simulator = simulator
        self.producer = producer
        self.topic = topic
        self.rate = rate
        self.timeScale = timeScale
        self.solveTime = solveTime
        self.book = book
        self.maxLag = maxLag
        self.consumed = consumed
        self.random = SplitMix64(seed: seed)
    }

    /// The event the bench publishes for a task.
    static func event(taskId: String, index: Int, callback: Bool = false) -> [UInt8] {
        Array(#"{"taskId":"\#(taskId)","correlationId":"bench-\#(index)","taskType":"ReCaptchaV2TaskProxyless"\#(callback ? #","callback":true"# : "")}"#.utf8)
    }

    /// Creates `count` tasks with solve times drawn here (so the bench knows when each becomes ready).
    func createTasks(_ count: Int) -> [(String, BenchTaskBook.Entry)] {
        var solves: [Double] = []
        solves.reserveCapacity(count)
        for _ in 0..<count { solves.append(solveTime.draw(&random)) }
        let scale = timeScale
        return simulator.withCore { core, now in
            let created = ContinuousClock.now
            return solves.map { solve in
                let id = core.createTask(solveTime: solve, now: now)
                return (id, BenchTaskBook.Entry(created: created, ready: created + .nanoseconds(Int64(solve / scale * 1e9))))
            }
        }
    }

    func publish(_ tasks: [(String, BenchTaskBook.Entry)], firstIndex: Int) async throws {
        for (offset, task) in tasks.enumerated() {
            try await producer.enqueue(KafkaOutgoingRecord(topic: topic, key: Array(task.0.utf8),
                                                           value: Self.event(taskId: task.0, index: firstIndex + offset))) { _ in }
        }
    }

    /// Generates load until `end`.
    func run(until end: ContinuousClock.Instant) async throws -> Result {
        var result = Result()
        let start = ContinuousClock.now
        let tick = Duration.milliseconds(5)
        var next = start
        while true {
            let now = ContinuousClock.now
            if now >= end { break }
            let target = Int(rate * (now - start).inSeconds) - result.heldBack
            let due = target - result.created
            if due > 0 {
                let lag = result.created - consumed()
                result.maxLag = max(result.maxLag, lag)
                if lag > maxLag {
                    result.heldBack += due
                } else {
                    let tasks = createTasks(due)
                    book.add(tasks)
                    try await publish(tasks, firstIndex: result.created)
                    result.created += due
                }
            }
            next = next + tick
            if next > ContinuousClock.now { try await Task.sleep(until: next, clock: .continuous) } else { next = ContinuousClock.now }
        }
        result.elapsed = (min(ContinuousClock.now, end) - start).inSeconds
        return result
    }
}
