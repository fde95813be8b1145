import Testing
@testable import Simulator

/// The simulator's rules, driven with explicit API times (no I/O, no clock).
@Suite("Simulator rules")
struct SimulatorCoreTests {
    private func core(_ change: (inout SimulatorConfig) -> Void = { _ in }) -> SimulatorCore {
        var config = SimulatorConfig()
        change(&config)
        return SimulatorCore(config: config)
    }

    @Test func processingThenReadyAndDetectionDelay() {
        var sim = core()
        let id = sim.createTask(solveTime: 10, now: 100)
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 105) == .processing)
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 113) == .ready(createdAt: 100, readyAt: 110))
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 120) == .ready(createdAt: 100, readyAt: 110))
        let stats = sim.stats(now: 120)
        #expect(stats.tasksSeenReady == 1)
        #expect(stats.detectionDelay.count == 1)
        #expect(stats.detectionDelay.mean == 3)
        #expect(stats.callsPerTask.max == 3)
        #expect(stats.getTaskResultCalls == 3)
    }

    @Test func detectionDelaySinceAGivenTime() {
        var sim = core()
        let early = sim.createTask(solveTime: 10, now: 100)
        let late = sim.createTask(solveTime: 10, now: 200)
        _ = sim.getTaskResult(clientKey: "k", taskId: early, now: 111) // seen 1 s after ready
        _ = sim.getTaskResult(clientKey: "k", taskId: late, now: 214) // seen 4 s after ready
        #expect(sim.stats(now: 220).detectionDelay.count == 2)
        let steady = sim.stats(now: 220, detectedSince: 150).detectionDelay
        #expect(steady.count == 1)
        #expect(steady.mean == 4)
        #expect(SimulatorEngine.query("/stats?a=1&detectedSince=150.5", "detectedSince") == "150.5")
        #expect(SimulatorEngine.query("/stats", "detectedSince") == nil)
    }

    @Test func unknownIdAndExpiryAnswerTaskIdInvalid() {
        var sim = core()
        #expect(sim.getTaskResult(clientKey: "k", taskId: "nope", now: 0) == .error(.taskIdInvalid))
        let id = sim.createTask(solveTime: 10, now: 0)
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 299) == .ready(createdAt: 0, readyAt: 10))
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 301) == .error(.taskIdInvalid))
        let stats = sim.stats(now: 301)
        #expect(stats.callsAfterExpiry == 1)
        #expect(stats.unknownTaskCalls == 1)
        #expect(stats.errorsByCode["ERROR_TASKID_INVALID"] == 2)
    }

    @Test func keysAreChecked() {
        var sim = core {
            $0.validKeys = ["good", "broke"]
            $0.zeroBalanceKeys = ["broke"]
        }
        #expect(sim.createTasks(clientKey: "bad", now: 0) == .error(.keyDoesNotExist))
        #expect(sim.createTasks(clientKey: "broke", now: 0) == .error(.zeroBalance))
        guard case .created(let ids) = sim.createTasks(clientKey: "good", count: 2, now: 0) else {
            Issue.record("create failed")
            return
        }
        #expect(ids.count == 2)
        #expect(sim.getTaskResult(clientKey: "bad", taskId: ids[0], now: 1) == .error(.keyDoesNotExist))
        #expect(sim.getTaskResult(clientKey: "broke", taskId: ids[0], now: 1) == .error(.zeroBalance))
        #expect(sim.getTaskResult(clientKey: "good", taskId: ids[0], now: 1) == .processing)
        #expect(sim.getBalance(clientKey: "good", now: 1) == .balance(100))
        #expect(sim.getBalance(clientKey: "bad", now: 1) == .error(.keyDoesNotExist))
    }

    @Test func banRuleBansForItsDurationThenLifts() {
        var sim = core { $0.ban = .init(maxErrors: 3, window: 10, duration: 60) }
        let id = sim.createTask(solveTime: 1, now: 0)
        // 3 errors in the window: not yet banned.
        for t in [1.0, 2, 3] {
            #expect(sim.getTaskResult(clientKey: "k", taskId: "bogus", now: t) == .error(.taskIdInvalid))
        }
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 3.5) == .ready(createdAt: 0, readyAt: 1))
        // The 4th within 10 s triggers the ban; everything is refused, valid calls too.
        #expect(sim.getTaskResult(clientKey: "k", taskId: "bogus", now: 4) == .error(.taskIdInvalid))
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 5) == .error(.ipBanned))
        #expect(sim.createTasks(clientKey: "k", now: 63) == .error(.ipBanned))
        #expect(sim.isBanned(at: 63.9))
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 64.1) == .ready(createdAt: 0, readyAt: 1))
        let stats = sim.stats(now: 65)
        #expect(stats.bansTriggered == 1)
        #expect(stats.bannedResponses == 2)
        #expect(!stats.banned)
    }

    @Test func errorsOutsideTheWindowDoNotBan() {
        var sim = core { $0.ban = .init(maxErrors: 2, window: 5, duration: 60) }
        for t in stride(from: 0.0, to: 60, by: 3) {
            _ = sim.getTaskResult(clientKey: "k", taskId: "bogus", now: t)
        }
        #expect(sim.stats(now: 60).bansTriggered == 0)
    }

    @Test func perTaskMinimumIntervalAndPollCap() {
        var sim = core {
            $0.minPollInterval = 2
            $0.maxPollsPerTask = 4
        }
        let id = sim.createTask(solveTime: 100, now: 0)
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 1) == .processing)
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 2) == .error(.tooMuchRequests))
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 4.5) == .processing)
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 7) == .processing)
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 9) == .error(.taskIdInvalid)) // 5th poll > cap
    }

    @Test func unsolvableTasksFailAtTheirSolveTime() {
        var sim = core()
        let id = sim.createTask(solveTime: 5, unsolvable: true, now: 0)
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 4) == .processing)
        #expect(sim.getTaskResult(clientKey: "k", taskId: id, now: 6) == .error(.captchaUnsolvable))
        #expect(sim.stats(now: 6).unsolvableSeen == 1)
    }

    @Test func deterministicUnderASeed() {
        func run(seed: UInt64) -> ([String], [Double], Int) {
            var sim = core {
                $0.seed = seed
                $0.unsolvableFraction = 0.3
            }
            guard case .created(let ids) = sim.createTasks(clientKey: "k", count: 200, now: 0) else { return ([], [], 0) }
            let readyAt = ids.map { sim.tasks[$0]!.readyAt }
            let unsolvable = ids.filter { sim.tasks[$0]!.unsolvable }.count
            return (ids, readyAt, unsolvable)
        }
        let a = run(seed: 42), b = run(seed: 42), c = run(seed: 43)
        #expect(a.0 == b.0)
        #expect(a.1 == b.1)
        #expect(a.2 == b.2)
        #expect(a.0 != c.0)
        #expect(a.1 != c.1)
        #expect(Set(a.0).count == 200)
        #expect(a.0.allSatisfy { $0.count == 36 && $0[$0.index($0.startIndex, offsetBy: 14)] == "4" })
        #expect((20...100).contains(a.2)) // ~30% of 200
    }

    @Test func lognormalDefaultsHaveTheRightShape() {
        var sim = core { $0.seed = 7 }
        guard case .created(let ids) = sim.createTasks(clientKey: "k", count: 5000, now: 0) else { return }
        let times = ids.map { sim.tasks[$0]!.readyAt }.sorted()
        let median = times[times.count / 2]
        #expect(times.first! >= 2)
        #expect(times.last! <= 120)
        #expect((13.5...16.5).contains(median))
    }

    @Test func integerTaskIdsAreAboveInt32() {
        var sim = core { $0.taskIdStyle = .integer }
        guard case .created(let ids) = sim.createTasks(clientKey: "k", count: 3, now: 0) else { return }
        #expect(ids.allSatisfy { (UInt64($0) ?? 0) > UInt64(Int32.max) })
        #expect(sim.getTaskResult(clientKey: "k", taskId: ids[0], now: 1) == .processing)
    }

    @Test func faultsFollowTheirProbabilities() {
        var sim = core { $0.faults.http500Probability = 1 }
        #expect(sim.drawFaults().kind == .http(500))
        sim.apply({ var c = sim.config; c.faults = .init(); c.faults.dropProbability = 0.5; return c }())
        var drops = 0
        for _ in 0..<1000 where sim.drawFaults().kind == .drop { drops += 1 }
        #expect((350...650).contains(drops))
        #expect(sim.stats(now: 0).faults.dropped == drops)
    }

    @Test func configPatchDeepMerges() throws {
        var config = SimulatorConfig()
        config.ban = .init(maxErrors: 1, window: 1, duration: 1)
        let patched = try config.merged(withJSON: Array(#"{"faults":{"http503Probability":0.25},"ban":null,"timeScale":60}"#.utf8))
        #expect(patched.faults.http503Probability == 0.25)
        #expect(patched.faults.retryAfterSeconds == 1)
        #expect(patched.ban == nil)
        #expect(patched.timeScale == 60)
        #expect(throws: SimulatorError.self) { try config.merged(withJSON: Array(#"{"timeScale":"fast"}"#.utf8)) }
    }

    @Test func oldTasksAreForgottenButStayInTheStatistics() {
        var sim = core { $0.retainAfterWindow = 100 }
        let old = sim.createTask(solveTime: 1, now: 0)
        _ = sim.getTaskResult(clientKey: "k", taskId: old, now: 2)
        _ = sim.getTaskResult(clientKey: "k", taskId: old, now: 3)
        let young = sim.createTask(solveTime: 1, now: 350)
        _ = sim.getTaskResult(clientKey: "k", taskId: young, now: 351)
        sim.purge(now: 401)
        #expect(sim.taskCount == 1)
        let stats = sim.stats(now: 401)
        #expect(stats.tasksPolled == 2)
        #expect(stats.callsPerTask.max == 2)
        #expect(sim.getTaskResult(clientKey: "k", taskId: old, now: 402) == .error(.taskIdInvalid))
        #expect(sim.stats(now: 402).unknownTaskCalls == 1)
    }

    @Test func statsSummaryPercentiles() {
        let summary = SimulatorStats.Summary.of((1...100).map(Double.init))
        #expect(summary.p50 == 50)
        #expect(summary.p99 == 99)
        #expect(summary.max == 100)
        #expect(summary.mean == 50.5)
    }
}

@Suite("Simulator configuration")
struct SimulatorConfigTests {
    @Test func invalidValuesAreRefused() {
        var config = SimulatorConfig()
        config.timeScale = 0
        #expect(throws: SimulatorError.self) { try config.validate() }
        config = SimulatorConfig()
        config.faults.http500Probability = 1.5
        #expect(throws: SimulatorError.self) { try config.validate() }
        #expect(throws: SimulatorError.self) { try SimulatorConfig().merged(withJSON: Array(#"{"unsolvableFraction":-1}"#.utf8)) }
        #expect(throws: Never.self) { try SimulatorConfig().validate() }
    }
}
