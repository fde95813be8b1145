import TaskAPI
import Testing
@testable import Poller
@testable import PollerCore

/// Drives a `PollingEngine` like the real driver would, with a fake provider and
/// a fake clock: calls are answered and publishes acknowledged on the next step.
struct EngineHarness {
    var engine: PollingEngine
    var now: Timestamp
    let partition = PartitionID(topic: "captcha.tasks", partition: 0)
    var nextOffset: Int64 = 0
    /// taskId → answers to give, in order (the last one repeats).
    var script: [String: [PollOutcome]] = [:]
    var callsPerTask: [String: Int] = [:]
    var callTimes: [Timestamp] = []
    var solutions: [String: SolutionMessage] = [:]
    var failures: [String: FailureMessage] = [:]
    var deadLetters: [DeadLetterMessage] = []
    var stored: Int64 = -1
    var pausedFetching = false
    var pendingCalls: [(TaskHandle, String, ClientKey)] = []
    var pendingPublishes: [TaskHandle] = []
    var pendingDeadLetters: [OffsetTracker.Token] = []
    var log: [PollingEngine.Action] = []

    init(configuration: PollingEngine.Configuration, start: Timestamp = t(0)) {
        engine = PollingEngine(configuration: configuration, random: SplitMix64(seed: 9))
        now = start
        apply(engine.assigned([PollingEngine.AssignedPartition(partition)]))
    }

    mutating func apply(_ actions: [PollingEngine.Action]) {
        for action in actions {
            log.append(action)
            switch action {
            case .call(let handle, let taskId, let key, _):
                pendingCalls.append((handle, taskId, key))
                callTimes.append(now)
            case .publishSolution(let handle, let message):
                #expect(solutions[message.context.taskId] == nil && failures[message.context.taskId] == nil, "two outputs for \(message.context.taskId)")
                solutions[message.context.taskId] = message
                pendingPublishes.append(handle)
            case .publishFailure(let handle, let message):
                #expect(solutions[message.context.taskId] == nil && failures[message.context.taskId] == nil, "two outputs for \(message.context.taskId)")
                failures[message.context.taskId] = message
                pendingPublishes.append(handle)
            case .publishDeadLetter(let token, let message):
                deadLetters.append(message)
                pendingDeadLetters.append(token)
            case .commitSoon:
                commit()
            case .pauseFetching: pausedFetching = true
            case .resumeFetching: pausedFetching = false
            case .takeHeldInput: #expect(pausedFetching, "held input means the input is paused")
            case .banned, .keyDisabled, .slowdownChanged, .skippedFinished, .commitMetadataIgnored: break
            }
        }
    }

    /// What the driver's commit timer does (here at once): the committed offset only grows.
    mutating func commit() {
        for commit in engine.pendingCommits() {
            #expect(commit.partition == partition)
            #expect(commit.offset >= stored)
            stored = commit.offset
        }
    }

    mutating func receive(_ value: String?, createdAt: Timestamp? = nil) {
        let source = MessageSource(topic: partition.topic, partition: partition.partition, offset: nextOffset, timestamp: createdAt ?? now)
        nextOffset += 1
        apply(engine.receive(InputRecord(source: source, key: Array("k".utf8), value: value.map { Array($0.utf8) }), now: now))
    }

    /// Answers pending calls and acknowledges pending publishes, then ticks.
    mutating func step() {
        let calls = pendingCalls
        pendingCalls = []
        for (handle, taskId, key) in calls {
            let n = callsPerTask[taskId, default: 0]
            callsPerTask[taskId] = n + 1
            let answers = script[taskId] ?? [.processing]
            apply(engine.callCompleted(handle, clientKey: key, outcome: answers[min(n, answers.count - 1)], now: now))
        }
        let publishes = pendingPublishes
        pendingPublishes = []
        for handle in publishes { apply(engine.published(handle)) }
        let letters = pendingDeadLetters
        pendingDeadLetters = []
        for token in letters { apply(engine.deadLetterPublished(token)) }
        apply(engine.tick(now: now))
    }

    /// Runs until nothing is left, jumping the clock to each wakeup (at most `maxStep` ahead).
    mutating func runToCompletion(maxStep: Duration = .seconds(1), limit: Int = 1_000_000) {
        var steps = 0
        while steps < limit {
            steps += 1
            step()
            if engine.inFlightCount == 0 && engine.heldInputCount == 0 && pendingCalls.isEmpty && pendingPublishes.isEmpty && pendingDeadLetters.isEmpty { return }
            if pendingCalls.isEmpty && pendingPublishes.isEmpty {
                let wake = engine.nextWakeup(now: now) ?? now + maxStep
                now = max(now + .milliseconds(1), min(wake, now + maxStep))
            } else {
                now = now + .milliseconds(200) // the calls take a little while
            }
        }
        Issue.record("did not finish in \(limit) steps")
    }

    func outputs(for taskId: String) -> Int { (solutions[taskId] != nil ? 1 : 0) + (failures[taskId] != nil ? 1 : 0) }
}

func config(_ tweak: (inout PollingEngine.Configuration) -> Void = { _ in }) -> PollingEngine.Configuration {
    // capmonster's policy (2 s minimum, 100 polls): the timings the tests below work out.
    var c = PollingEngine.Configuration(profile: .capmonster)
    c.defaultProvider = "ez-captcha"
    c.defaultClientKey = ClientKey("default-key")
    c.rateLimit = 1000
    c.maxConcurrentCalls = 100
    tweak(&c)
    return c
}

let solved = PollOutcome.ready(solution: RawJSON(unchecked: Array(#"{"token":"tok"}"#.utf8)))

@Suite struct PollingEngineTests {
    @Test func resumeBelowIsNinetyPercentOfMaxInFlightUnlessSet() {
        var c = PollingEngine.Configuration()
        c.maxInFlight = 1_000
        #expect(c.resumeBelow == 900)
        c.resumeBelow = 10
        c.maxInFlight = 2_000
        #expect(c.resumeBelow == 10)
    }

    @Test func retryAfterIsAFloorUnderTheBackoff() {
        var h = EngineHarness(configuration: config())
        h.script["a"] = [.transient(retryAfter: .seconds(40)), solved]
        h.script["b"] = [.transient(retryAfter: .seconds(400)), solved]
        h.receive(#"{"taskId":"a"}"#)
        h.receive(#"{"taskId":"b"}"#)
        h.runToCompletion()
        #expect(h.solutions["a"]?.polls == 2)
        #expect(h.callTimes.count == 3)
        let first = h.callTimes[0]
        #expect(h.callTimes[2] >= first + .seconds(40), "not polled again before Retry-After")
        #expect(h.failures["b"]?.reason == .transientErrors, "a pause past the window fails at once")
        #expect(h.callsPerTask["b"] == 1)
    }

    @Test func basicLifecycleAndOffsets() {
        var h = EngineHarness(configuration: config())
        h.script["a"] = [.processing, .processing, solved]
        h.script["b"] = [.taskFailed(ProviderError(errorId: 1, errorCode: "ERROR_CAPTCHA_UNSOLVABLE", errorDescription: "no"))]
        h.receive(#"{"taskId":"a","metadata":{"m":1}}"#)
        h.receive("not json")
        h.receive(#"{"taskId":"b"}"#)
        h.receive(#"{"taskId":"old"}"#, createdAt: h.now - .seconds(400))
        // Expired on arrival: failed with no call; bad record: dead letter.
        #expect(h.failures["old"]?.reason == .expired)
        #expect(h.failures["old"]?.polls == 0)
        #expect(h.deadLetters.count == 1)
        #expect(h.deadLetters.first?.reason.code == .invalidJSON)
        h.runToCompletion()
        #expect(h.solutions["a"]?.polls == 3)
        #expect(h.solutions["a"]?.context.metadata?.description == #"{"m":1}"#)
        #expect(h.failures["b"]?.reason == .taskError)
        #expect(h.failures["b"]?.errorCode == "ERROR_CAPTCHA_UNSOLVABLE")
        #expect(h.failures["b"]?.errorId == 1, "a failure from an API answer carries its errorId")
        #expect(h.failures["b"].map { String(decoding: $0.jsonBytes(), as: UTF8.self).contains(#""errorId":1"#) } == true)
        #expect(h.callsPerTask["old"] == nil)
        #expect(h.stored == 4)
        // Polls of one task respect the interval; the first waits the initial delay.
        #expect(h.callTimes.first.map { $0 >= t(5) } == true)
    }

    @Test func missingKeyAndExhaustion() {
        var h = EngineHarness(configuration: config {
            $0.defaultClientKey = nil
            $0.policy.maxPolls = 3
        })
        h.receive(#"{"taskId":"nokey"}"#)
        h.receive(#"{"taskId":"slow","clientKey":"own"}"#)
        h.runToCompletion()
        #expect(h.failures["nokey"]?.reason == .missingClientKey)
        #expect(h.failures["slow"]?.reason == .pollsExhausted)
        #expect(h.failures["slow"]?.polls == 3)
    }

    @Test func taskThatNeverSolvesExpiresAtTheDeadlineWithoutMoreCalls() {
        var h = EngineHarness(configuration: config())
        h.receive(#"{"taskId":"forever"}"#)
        h.runToCompletion()
        #expect(h.failures["forever"]?.reason == .expired)
        #expect(h.callTimes.allSatisfy { $0 <= t(295) })
        #expect(h.failures["forever"]!.resolvedAt > t(295))
        let polls = h.failures["forever"]!.polls
        #expect(polls >= 90 && polls <= 100)
    }

    @Test func aCreationTimeInTheFutureDoesNotStretchTheWindow() {
        var h = EngineHarness(configuration: config())
        h.receive(#"{"taskId":"future","createdAt":"2099-01-01T00:00:00Z"}"#)
        h.runToCompletion()
        #expect(h.failures["future"]?.reason == .expired)
        #expect(h.callTimes.allSatisfy { $0 <= t(295) })
    }

    @Test func accountErrorFailsOnlyThatKeysTasks() {
        var h = EngineHarness(configuration: config())
        let keyError = PollOutcome.accountError(ProviderError(errorId: 1, errorCode: "ERROR_KEY_DOES_NOT_EXIST"))
        h.script["bad-1"] = [keyError]
        h.script["good-1"] = [.processing, solved]
        for i in 1...5 { h.receive(#"{"taskId":"bad-\#(i)","clientKey":"BAD"}"#) }
        h.receive(#"{"taskId":"good-1","clientKey":"GOOD"}"#)
        h.runToCompletion()
        for i in 1...5 {
            #expect(h.failures["bad-\(i)"]?.reason == .accountError)
            #expect(h.failures["bad-\(i)"]?.errorCode == "ERROR_KEY_DOES_NOT_EXIST")
        }
        // Bad-1 was answered first; the others of its key were waiting or in flight.
        #expect((h.callsPerTask["bad-1"] ?? 0) == 1)
        #expect(h.solutions["good-1"] != nil)
        // A new task for the dead key fails at once, with no call.
        h.receive(#"{"taskId":"bad-late","clientKey":"BAD"}"#)
        #expect(h.failures["bad-late"]?.reason == .accountError)
        #expect(h.callsPerTask["bad-late"] == nil)
        #expect(h.log.contains { if case .keyDisabled = $0 { return true } else { return false } })
    }

    @Test func ipBanStopsEveryCallUntilItEnds() {
        var h = EngineHarness(configuration: config { $0.banDuration = .seconds(120) })
        h.script["trigger"] = [.ipBanned, solved]
        h.script["young"] = [.processing, solved]
        h.receive(#"{"taskId":"trigger"}"#)
        h.receive(#"{"taskId":"young"}"#)
        h.receive(#"{"taskId":"old"}"#, createdAt: h.now - .seconds(250)) // deadline within the ban
        h.runToCompletion()
        let banStart = t(5.2) // the first call is answered 200 ms after the first poll
        let inBan = h.callTimes.filter { $0 > banStart && $0 < banStart + .seconds(120) }
        #expect(inBan.isEmpty, "calls during the ban: \(inBan)")
        #expect(h.solutions["trigger"] != nil)
        #expect(h.solutions["young"] != nil)
        #expect(h.failures["old"]?.reason == .expired)
        #expect(h.failures["old"]?.errorCode == "ERROR_IP_BANNED")
    }

    @Test func revokeDropsTasksAndDiscardsLateResults() {
        var h = EngineHarness(configuration: config())
        h.receive(#"{"taskId":"a"}"#)
        h.receive(#"{"taskId":"b"}"#)
        h.now = t(5)
        h.step() // both called
        #expect(h.pendingCalls.count == 2)
        let revoked = h.engine.revoked([h.partition])
        #expect(revoked.commits.map(\.offset) == [0])
        #expect(h.engine.inFlightCount == 0)
        h.script["a"] = [solved]
        h.step() // late answers: permits returned, nothing published
        #expect(h.solutions.isEmpty && h.failures.isEmpty)
        #expect(h.engine.callsInProgress == 0)
        // Records of a revoked partition are skipped.
        h.receive(#"{"taskId":"c"}"#)
        #expect(h.engine.inFlightCount == 0)
    }

    @Test func recordsFetchedAtTheBoundAreHeldThenTakenInOrder() {
        var h = EngineHarness(configuration: config {
            $0.maxInFlight = 3
            $0.resumeBelow = 1
        })
        for i in 0..<10 { h.script["h\(i)"] = [.processing, solved] }
        // A batch fetched before the pause took effect: ten records, room for three.
        for i in 0..<10 { h.receive(#"{"taskId":"h\#(i)"}"#) }
        #expect(h.pausedFetching)
        #expect(h.engine.inFlightCount == 3 && h.engine.heldInputCount == 7, "held, not tasks: no polls, no deadlines tracked")
        var most = 0
        var resumedWhileHeld = false
        var steps = 0
        while (h.engine.inFlightCount > 0 || h.engine.heldInputCount > 0), steps < 1_000 {
            steps += 1
            h.now = h.now + .milliseconds(500)
            h.step()
            most = max(most, h.engine.inFlightCount)
            if !h.pausedFetching && h.engine.heldInputCount > 0 { resumedWhileHeld = true }
        }
        #expect(most <= 3, "the bound holds: at most \(most) tasks")
        #expect(!resumedWhileHeld, "fetching resumes only once every held record is taken")
        #expect(!h.pausedFetching)
        #expect(h.solutions.count == 10)
        // Taken in offset order: the committed offset moved to the end.
        #expect(h.stored == 10)
    }

    @Test func heldRecordsOfARevokedPartitionAreDropped() {
        var h = EngineHarness(configuration: config {
            $0.maxInFlight = 2
            $0.resumeBelow = 1
        })
        for i in 0..<5 { h.receive(#"{"taskId":"r\#(i)"}"#) }
        #expect(h.engine.heldInputCount == 3)
        h.apply(h.engine.revoking([h.partition]))
        #expect(h.engine.heldInputCount == 0, "the next owner reads them from Kafka")
    }

    /// The in-flight gate had resumed and only held records kept the input paused; a
    /// revoke then dropped them all. The engine was no longer paused but said nothing,
    /// so the consumer stayed paused for good (a stall seen in the scale-out test: two
    /// partitions assigned and never read). Dropping the last held records resumes.
    @Test func droppingTheLastHeldRecordsResumesTheInput() {
        var h = EngineHarness(configuration: config {
            $0.maxInFlight = 2
            $0.resumeBelow = 1
        })
        let other = PartitionID(topic: h.partition.topic, partition: h.partition.partition + 1)
        h.apply(h.engine.assigned([PollingEngine.AssignedPartition(other)]))
        // Two records that fail at once (long expired): at the bound, waiting for their acks.
        h.receive(#"{"taskId":"a0","createdAt":"2020-01-01T00:00:00Z"}"#)
        h.receive(#"{"taskId":"a1","createdAt":"2020-01-01T00:00:00Z"}"#)
        #expect(h.pausedFetching)
        // Fetched before the pause took effect, from the other partition: held.
        for offset in 0..<3 {
            let source = MessageSource(topic: other.topic, partition: other.partition, offset: Int64(offset), timestamp: h.now)
            h.apply(h.engine.receive(InputRecord(source: source, key: nil, value: Array(#"{"taskId":"b\#(offset)"}"#.utf8)), now: h.now))
        }
        #expect(h.engine.heldInputCount == 3)
        // The acks bring the count to the low-water mark: the held records are to be taken next tick.
        for handle in h.pendingPublishes { h.apply(h.engine.published(handle)) }
        h.pendingPublishes = []
        #expect(h.log.contains(.takeHeldInput))
        // Before that tick, their partition is revoked: nothing is held any more.
        h.apply(h.engine.revoking([other]))
        h.apply(h.engine.tick(now: h.now))
        #expect(h.engine.heldInputCount == 0 && !h.engine.isFetchingPaused)
        #expect(!h.pausedFetching, "the input resumes once nothing holds it paused")
    }

    @Test func backpressurePausesAndResumes() {
        var h = EngineHarness(configuration: config {
            $0.maxInFlight = 3
            $0.resumeBelow = 1
        })
        h.script["x0"] = [solved]
        h.script["x1"] = [solved]
        h.script["x2"] = [.processing, .processing, solved]
        h.receive(#"{"taskId":"x0"}"#)
        h.receive(#"{"taskId":"x1"}"#)
        #expect(!h.pausedFetching)
        h.receive(#"{"taskId":"x2"}"#)
        #expect(h.pausedFetching)
        // A rebalance while paused re-applies the pause.
        #expect(h.engine.assigned([PollingEngine.AssignedPartition(PartitionID(topic: "captcha.tasks", partition: 1))]) == [.pauseFetching])
        h.now = t(5)
        h.step()
        h.now = t(5.2)
        h.step() // x0, x1 solved and acknowledged on the next step
        h.step()
        #expect(h.engine.inFlightCount == 1)
        #expect(!h.pausedFetching)
    }

    @Test func rateLimitSpacesCallsAndConcurrencyCaps() {
        var h = EngineHarness(configuration: config {
            $0.rateLimit = 10
            $0.burst = 1
            $0.maxConcurrentCalls = 5
        })
        for i in 0..<50 { h.receive(#"{"taskId":"r\#(i)"}"#) }
        for i in 0..<50 { h.script["r\(i)"] = [solved] }
        h.runToCompletion(maxStep: .milliseconds(50))
        #expect(h.solutions.count == 50)
        // At most rate * elapsed + burst calls in any window.
        let times = h.callTimes.map(\.millisecondsSinceEpoch).sorted()
        for (i, start) in times.enumerated() {
            let inSecond = times[i...].prefix { $0 < start + 1000 }.count
            #expect(inSecond <= 11)
        }
    }

    @Test func twoThousandMixedTasksGetExactlyOneOutputEach() {
        var h = EngineHarness(configuration: config {
            $0.rateLimit = 200
            $0.maxConcurrentCalls = 50
            $0.maxInFlight = 500
            $0.resumeBelow = 400
        })
        var random = SplitMix64(seed: 77)
        var expected: [String: String] = [:]
        var received = 0
        var bad = 0
        while received < 2_000 || h.engine.inFlightCount > 0 || !h.pendingCalls.isEmpty || !h.pendingPublishes.isEmpty {
            if received < 2_000 && !h.pausedFetching {
                for _ in 0..<10 where received < 2_000 {
                    let id = "t\(received)"
                    received += 1
                    switch Int.random(in: 0..<10, using: &random) {
                    case 0:
                        h.receive(#"{"taskId":""}"#)
                        bad += 1
                        continue
                    case 1:
                        h.script[id] = [.taskFailed(ProviderError(errorId: 1, errorCode: "ERROR_CAPTCHA_UNSOLVABLE"))]
                        expected[id] = "task_error"
                    case 2:
                        h.script[id] = [.accountError(ProviderError(errorId: 1, errorCode: "ERROR_ZERO_BALANCE"))]
                        expected[id] = "account_error"
                        h.receive(#"{"taskId":"\#(id)","clientKey":"broke"}"#)
                        continue
                    case 3:
                        expected[id] = "expired"
                        h.receive(#"{"taskId":"\#(id)"}"#, createdAt: h.now - .seconds(301))
                        continue
                    case 4:
                        h.script[id] = [.transient(retryAfter: nil), .transient(retryAfter: nil), .processing, solved]
                        expected[id] = "ready"
                    default:
                        h.script[id] = Array(repeating: .processing, count: Int.random(in: 0...20, using: &random)) + [solved]
                        expected[id] = "ready"
                    }
                    h.receive(#"{"taskId":"\#(id)"}"#)
                }
            }
            h.step()
            h.now = h.now + .milliseconds(100)
        }
        #expect(h.deadLetters.count == bad)
        #expect(h.solutions.count + h.failures.count == expected.count)
        for (id, outcome) in expected {
            if outcome == "ready" {
                #expect(h.solutions[id] != nil, "\(id)")
            } else {
                #expect(h.failures[id]?.reason.rawValue == outcome, "\(id): \(String(describing: h.failures[id]?.reason))")
            }
        }
        #expect(h.stored == 2_000)
        #expect(h.engine.callsInProgress == 0)
    }
}

@Test func providerErrorIdReachesTheEngine() {
    let outcome = PollOutcome(TaskOutcome.failed(.task, code: "ERROR_CAPTCHA_UNSOLVABLE", description: "no", errorId: 12))
    #expect(outcome == .taskFailed(ProviderError(errorId: 12, errorCode: "ERROR_CAPTCHA_UNSOLVABLE", errorDescription: "no")))
    let account = PollOutcome(TaskOutcome.failed(.account, code: "ERROR_ZERO_BALANCE", description: nil, errorId: 10))
    #expect(account == .accountError(ProviderError(errorId: 10, errorCode: "ERROR_ZERO_BALANCE")))
    let unknown = PollOutcome(TaskOutcome.failed(.unknownTask, code: "ERROR_TASK_ABSENT", description: nil, errorId: 16))
    #expect(unknown == .taskNotFound(ProviderError(errorId: 16, errorCode: "ERROR_TASK_ABSENT")))
}

@Test func anEventForAnotherProviderIsADeadLetter() {
    var h = EngineHarness(configuration: config { $0.defaultProvider = "ez-captcha" })
    h.script["a"] = [solved]
    h.script["b"] = [solved]
    h.receive(#"{"taskId":"a","provider":"no-such-provider"}"#)
    h.receive(#"{"taskId":"c","provider":"capsolver"}"#)
    h.receive(#"{"taskId":"b","provider":"EZ-Captcha"}"#)
    h.runToCompletion()
    #expect(h.deadLetters.map(\.reason.code) == [.unknownProvider, .unknownProvider])
    #expect(h.deadLetters.first?.reason.message.contains("no-such-provider") == true)
    #expect(h.callsPerTask["a"] == nil && h.callsPerTask["c"] == nil, "never polled against the wrong API")
    #expect(h.solutions["b"] != nil)
    #expect(h.stored == 3)
}

@Test func unsolvableAnswersDoNotSlowTheCallRate() {
    var h = EngineHarness(configuration: config {
        $0.errorBudget = ErrorBudget(window: .seconds(60), maxErrorRate: 0.2, minCalls: 20, maxErrors: 60)
    })
    let unsolvable = PollOutcome.taskFailed(ProviderError(errorId: 12, errorCode: "ERROR_CAPTCHA_UNSOLVABLE"))
    for i in 0..<200 {
        h.script["u\(i)"] = [unsolvable]
        h.receive(#"{"taskId":"u\#(i)"}"#)
    }
    h.runToCompletion()
    #expect(h.failures.count == 200)
    #expect(!h.log.contains { if case .slowdownChanged = $0 { return true } else { return false } },
            "task outcomes are the captchas' doing, not errors of ours")
    #expect(h.engine.callSlowdown == 1)
}

@Test func unknownTaskIdsDoCountAgainstTheBudget() {
    var h = EngineHarness(configuration: config {
        $0.errorBudget = ErrorBudget(window: .seconds(60), maxErrorRate: 0.2, minCalls: 20, maxErrors: 60)
    })
    let unknown = PollOutcome.taskNotFound(ProviderError(errorId: 16, errorCode: "ERROR_TASKID_INVALID"))
    for i in 0..<100 {
        h.script["n\(i)"] = [unknown]
        h.receive(#"{"taskId":"n\#(i)"}"#)
    }
    h.runToCompletion()
    #expect(h.log.contains { if case .slowdownChanged = $0 { return true } else { return false } })
}

/// Commit state across owners: skip what the last owner finished, drain on revoke.
@Suite struct PollingEngineHandoverTests {
    /// A harness whose partition was handed over with this commit.
    func handedOver(committed: Int64, finished: [Range<Int64>], metadata: String? = nil) -> EngineHarness {
        var h = EngineHarness(configuration: config())
        _ = h.engine.revoked([h.partition])
        let text = metadata ?? OffsetCommitMetadata.encode(base: committed, finished: finished).metadata
        h.apply(h.engine.assigned([PollingEngine.AssignedPartition(h.partition, committedOffset: committed, metadata: text)]))
        h.nextOffset = committed
        return h
    }

    @Test func recordsTheLastOwnerFinishedAreSkippedWithoutACallOrAnOutput() {
        var h = handedOver(committed: 0, finished: [1..<3])
        for id in ["a", "b", "c", "d"] {
            h.script[id] = [solved]
            h.receive(#"{"taskId":"\#(id)"}"#)
        }
        #expect(h.log.filter { if case .skippedFinished = $0 { return true } else { return false } }.count == 2)
        h.runToCompletion()
        #expect(Set(h.solutions.keys) == ["a", "d"], "b and c were finished by the last owner")
        #expect(h.callsPerTask["b"] == nil && h.callsPerTask["c"] == nil)
        #expect(h.stored == 4)
    }

    /// What this member's refused final commit of a partition recorded.
    func refusedCommit(_ partition: PartitionID, offset: Int64, finished: [Range<Int64>]) -> OffsetTracker.Commit {
        OffsetTracker.Commit(partition: partition, offset: offset,
                             metadata: OffsetCommitMetadata.encode(base: offset, finished: finished).metadata,
                             finishedAbove: Int64(finished.reduce(0) { $0 + $1.count }), truncated: false)
    }

    @Test func aPartitionBackAfterARefusedFinalCommitSkipsWhatThisMemberFinished() {
        var h = EngineHarness(configuration: config())
        _ = h.engine.revoked([h.partition])
        // The broker refused the revoke's final commit (offset 2, 3 finished above it) and
        // still holds an older one (offset 0): the partition comes back to this member.
        h.engine.finalCommitsRefused([refusedCommit(h.partition, offset: 2, finished: [3..<4])])
        h.apply(h.engine.assigned([PollingEngine.AssignedPartition(h.partition, committedOffset: 0, metadata: nil)]))
        h.nextOffset = 0
        for id in ["a", "b", "c", "d", "e"] {
            h.script[id] = [solved]
            h.receive(#"{"taskId":"\#(id)"}"#)
        }
        h.runToCompletion()
        #expect(Set(h.solutions.keys) == ["c", "e"], "offsets 0, 1 and 3 were finished here before the revoke")
        #expect(h.stored == 5)
    }

    @Test func aLostPartitionThatComesBackSkipsWhatFinishedHere() {
        var h = EngineHarness(configuration: config())
        for id in ["a", "b"] {
            h.script[id] = [solved]
            h.receive(#"{"taskId":"\#(id)"}"#)
        }
        h.runToCompletion()
        #expect(h.stored == 2)
        // The broker refused that commit, then the partition was lost: assigned again with
        // nothing committed.
        _ = h.engine.commitFailed([refusedCommit(h.partition, offset: 2, finished: [])])
        #expect(h.engine.revoked([h.partition], lost: true).commits.isEmpty)
        h.apply(h.engine.assigned([PollingEngine.AssignedPartition(h.partition)]))
        h.nextOffset = 0
        for id in ["a", "b", "c"] {
            h.script[id] = [solved]
            h.receive(#"{"taskId":"\#(id)"}"#)
        }
        h.runToCompletion()
        #expect(h.callsPerTask["a"] == 1 && h.callsPerTask["b"] == 1, "a and b were not polled again")
        #expect(h.callsPerTask["c"] == 1)
    }

    @Test func ownAndGroupCommitsMergeAsAUnionAboveWhereFetchingStarts() {
        let p = PartitionID(topic: "t", partition: 0)
        let own = refusedCommit(p, offset: 5, finished: [6..<8, 10..<11])
        #expect(PollingEngine.merged([], with: own, from: 0) == [0..<5, 6..<8, 10..<11])
        #expect(PollingEngine.merged([12..<13], with: own, from: 7) == [7..<8, 10..<11, 12..<13],
                "a newer group commit: only what lies above it")
        #expect(PollingEngine.merged([4..<7, 9..<10], with: own, from: 2) == [2..<8, 9..<11])
        #expect(PollingEngine.merged([], with: own, from: 20) == [])
        #expect(PollingEngine.merged([], with: own, from: nil) == [0..<5, 6..<8, 10..<11])
    }

    @Test func unusableMetadataIsReportedAndNothingIsSkipped() {
        var h = handedOver(committed: 0, finished: [], metadata: "ezp1:not-base64!")
        #expect(h.log.contains { if case .commitMetadataIgnored = $0 { return true } else { return false } })
        for id in ["a", "b"] {
            h.script[id] = [solved]
            h.receive(#"{"taskId":"\#(id)"}"#)
        }
        h.runToCompletion()
        #expect(Set(h.solutions.keys) == ["a", "b"])
    }

    @Test func revokingLetsCallsFinishAndPublishesOnlyResults() throws {
        var h = EngineHarness(configuration: config())
        h.script["a"] = [.processing]
        h.script["b"] = [solved]
        h.receive(#"{"taskId":"a"}"#) // offset 0
        h.receive(#"{"taskId":"b"}"#) // offset 1
        h.receive(#"{"taskId":"late"}"#, createdAt: h.now) // offset 2, polled later
        h.now = t(5)
        h.apply(h.engine.tick(now: h.now))
        let calling = h.pendingCalls.map(\.1)
        #expect(Set(calling) == ["a", "b", "late"])
        // Keep "late" waiting: answer it first, so only a and b are in a call at the revoke.
        let lateCall = h.pendingCalls.first { $0.1 == "late" }!
        h.pendingCalls.removeAll { $0.1 == "late" }
        h.apply(h.engine.callCompleted(lateCall.0, clientKey: lateCall.2, outcome: .processing, now: h.now))

        h.apply(h.engine.revoking([h.partition]))
        #expect(h.engine.busyCount(in: [h.partition]) == 2, "a and b in a call; the waiting task was dropped")
        #expect(h.engine.inFlightCount == 2)
        h.receive(#"{"taskId":"new"}"#) // arrives during the drain: left for the next owner
        #expect(h.engine.inFlightCount == 2)

        let calls = h.pendingCalls
        h.pendingCalls = []
        for (handle, taskId, key) in calls {
            h.apply(h.engine.callCompleted(handle, clientKey: key, outcome: h.script[taskId]![0], now: h.now))
        }
        #expect(h.solutions.keys.sorted() == ["b"], "a result is published; a still-processing task is not")
        #expect(h.engine.busyCount(in: [h.partition]) == 1, "b's output not acknowledged yet")
        // Acknowledged, but the commit timer has not run: the revoke's commit carries it.
        for handle in h.pendingPublishes { #expect(h.engine.published(handle).contains(.commitSoon)) }
        h.pendingPublishes = []
        #expect(h.engine.busyCount(in: [h.partition]) == 0)
        let (commits, _) = h.engine.revoked([h.partition])
        let commit = try #require(commits.first)
        #expect(commit.offset == 0, "a is unfinished")
        #expect(try OffsetCommitMetadata.decode(commit.metadata, base: 0) == [1..<2], "b is recorded finished")
        #expect(h.engine.inFlightCount == 0)
    }

    @Test func aLostPartitionIsNotCommitted() {
        var h = EngineHarness(configuration: config())
        h.script["a"] = [solved]
        h.receive(#"{"taskId":"a"}"#)
        let (commits, _) = h.engine.revoked([h.partition], lost: true)
        #expect(commits.isEmpty)
    }

    @Test func commitSoonIsSentOncePerRound() {
        var h = EngineHarness(configuration: config())
        h.receive(#"{"taskId":"x"}"#, createdAt: h.now - .seconds(400)) // expires at once
        h.receive(#"{"taskId":"y"}"#, createdAt: h.now - .seconds(400))
        let publishes = h.pendingPublishes
        h.pendingPublishes = []
        let first = h.engine.published(publishes[0])
        let second = h.engine.published(publishes[1])
        #expect(first.contains(.commitSoon))
        #expect(!second.contains(.commitSoon), "one request until the commit runs")
        #expect(h.engine.pendingCommits().map(\.offset) == [2])
    }
}

@Suite struct ProviderRouteTests {
    static func record(_ offset: Int64, _ json: String) -> InputRecord {
        InputRecord(source: MessageSource(topic: "captcha.tasks", partition: 0, offset: offset, timestamp: t(0)),
                    key: nil, value: Array(json.utf8))
    }

    @Test func anEventsProviderPicksItsRouteAndItsTaskTypeItsPolicy() {
        let slow = testPolicy(initialDelay: .seconds(10), interval: .seconds(3), minInterval: .zero)
        let fast = testPolicy(initialDelay: .seconds(1), interval: .seconds(1), minInterval: .zero)
        var engine = PollingEngine(configuration: config {
            $0.defaultProvider = "ez-captcha"
            $0.providers = [
                ProviderRoute(name: "ez-captcha", policy: slow, taskTypePolicies: ["ImageToTextTask": fast], defaultClientKey: ClientKey("ez-key")),
                ProviderRoute(name: "capsolver", policy: slow, defaultClientKey: ClientKey("cs-key")),
            ]
        })
        _ = engine.assigned([PollingEngine.AssignedPartition(PartitionID(topic: "captcha.tasks", partition: 0))])
        _ = engine.receive(Self.record(0, #"{"taskId":"img","taskType":"ImageToTextTask"}"#), now: t(0))
        _ = engine.receive(Self.record(1, #"{"taskId":"re","provider":"CapSolver"}"#), now: t(0))
        _ = engine.receive(Self.record(2, #"{"taskId":"plain"}"#), now: t(0))
        let lettered = engine.receive(Self.record(3, #"{"taskId":"x","provider":"2captcha"}"#), now: t(0))
        guard case .publishDeadLetter(_, let letter)? = lettered.first else {
            Issue.record("an unknown provider is a dead letter: \(lettered)")
            return
        }
        #expect(letter.reason.code == .unknownProvider)
        #expect(letter.reason.message.contains("ez-captcha, capsolver"))

        // The image task's own policy polls after 1 s; the others after 10 s.
        let early = engine.tick(now: t(1))
        #expect(early == [.call(TaskHandle(index: 0, generation: 0), taskId: "img", clientKey: ClientKey("ez-key"), provider: "ez-captcha")])
        let later = engine.tick(now: t(10))
        let calls = later.compactMap { action -> (String, ClientKey, String)? in
            if case .call(_, let id, let key, let provider) = action { return (id, key, provider) }
            return nil
        }
        #expect(calls.map(\.0).sorted() == ["plain", "re"])
        #expect(calls.first { $0.0 == "re" }.map { $0.2 == "capsolver" && $0.1 == ClientKey("cs-key") } == true,
                "the event's provider (any case) picks the route's spelling and key")
        #expect(calls.first { $0.0 == "plain" }?.2 == "ez-captcha", "no provider: the default")
    }
}

@Suite struct AdaptiveInFlightTests {
    @Test func lateStartsLowerTheBoundAndOnTimeStartsRaiseItBack() {
        var h = EngineHarness(configuration: config {
            $0.maxInFlight = 100
            $0.resumeBelow = 90
            $0.adaptiveInFlight = true
            $0.maxConcurrentCalls = 1 // one call at a time: the rest start later and later
            $0.policy = testPolicy(initialDelay: .seconds(1), interval: .seconds(2), minInterval: .zero)
        })
        // Tasks keep arriving (two per step, while the input is not paused); each call
        // takes a quarter second, so polls fall further and further behind.
        var lowest = 100
        var paused = false
        var next = 0
        for _ in 0..<120 {
            if !h.pausedFetching {
                for _ in 0..<2 {
                    h.script["a\(next)"] = [solved]
                    h.receive(#"{"taskId":"a\#(next)"}"#)
                    next += 1
                }
            }
            h.now = h.now + .milliseconds(250)
            h.step()
            lowest = min(lowest, h.engine.inFlightLimit)
            paused = paused || (h.pausedFetching && h.engine.inFlightCount < 100)
        }
        #expect(lowest < 60, "polls started seconds late: the bound fell (\(lowest))")
        #expect(lowest >= 10, "never below a tenth of maxInFlight")
        #expect(paused, "the input paused below maxInFlight")
        // No new input: the backlog drains, nothing is late any more, the bound grows back.
        for _ in 0..<400 where h.engine.inFlightCount > 0 || h.engine.heldInputCount > 0 {
            h.now = h.now + .milliseconds(250)
            h.step()
        }
        for _ in 0..<30 {
            h.now = h.now + .seconds(1)
            h.step()
        }
        #expect(h.engine.inFlightLimit == 100)
        #expect(!h.pausedFetching)
    }

    @Test func lateStartsFarBelowTheBoundPauseTheInputAtOnce() {
        var h = EngineHarness(configuration: config {
            $0.maxInFlight = 1_000
            $0.adaptiveInFlight = true
            $0.maxConcurrentCalls = 1
            $0.policy = testPolicy(initialDelay: .seconds(1), interval: .seconds(2), minInterval: .zero)
        })
        // 200 tasks, a fifth of the bound, polled one at a time: polls start seconds late.
        for i in 0..<200 {
            h.script["b\(i)"] = [.processing, .processing, solved]
            h.receive(#"{"taskId":"b\#(i)"}"#)
        }
        var pausedAt: Int?
        for _ in 0..<40 where pausedAt == nil {
            h.now = h.now + .milliseconds(250)
            h.step()
            if h.pausedFetching { pausedAt = h.engine.inFlightCount }
        }
        #expect(pausedAt != nil, "late polls paused the input although 200 of 1,000 were in flight")
        #expect(h.engine.inFlightLimit < 200, "the bound fell below what was in flight (\(h.engine.inFlightLimit))")
        #expect(h.engine.inFlightLimit >= 100, "never below a tenth of maxInFlight")
    }

    @Test func lateStartsTheErrorBudgetCausesDoNotLowerTheBound() {
        var h = EngineHarness(configuration: config {
            $0.maxInFlight = 100
            $0.adaptiveInFlight = true
            $0.maxConcurrentCalls = 1
            $0.errorBudget = ErrorBudget(window: .seconds(60), maxErrorRate: 0.2, minCalls: 5, maxErrors: 1000)
            $0.policy = testPolicy(initialDelay: .seconds(1), interval: .seconds(2), minInterval: .zero)
        })
        for i in 0..<80 {
            h.script["e\(i)"] = [.transient(retryAfter: nil), .transient(retryAfter: nil), solved]
            h.receive(#"{"taskId":"e\#(i)"}"#)
        }
        var lowest = 100
        var slowedSteps = 0
        for _ in 0..<200 {
            h.now = h.now + .milliseconds(250)
            h.step()
            if h.engine.callSlowdown > 1 {
                slowedSteps += 1
                lowest = min(lowest, h.engine.inFlightLimit)
            }
        }
        #expect(slowedSteps > 20, "the error budget slowed the calls for a while (\(slowedSteps) steps)")
        #expect(lowest == 100, "the slowdown is deliberate: the bound stays (\(lowest))")
    }

    /// Late is measured against each task's own poll interval: polls seconds late are on
    /// time for a provider polled every minute, and late for one polled every 2 s.
    @Test(arguments: [(provider: "slow", lowers: false), (provider: "fast", lowers: true)])
    func lateIsMeasuredAgainstTheTasksOwnInterval(provider: String, lowers: Bool) {
        let fast = testPolicy(initialDelay: .seconds(1), interval: .seconds(2), minInterval: .zero)
        let slow = testPolicy(initialDelay: .seconds(1), interval: .seconds(60), minInterval: .zero)
        var h = EngineHarness(configuration: config {
            $0.maxInFlight = 100
            $0.adaptiveInFlight = true
            $0.maxConcurrentCalls = 1 // one call at a time: the last of 40 starts about 10 s late
            $0.policy = fast
            $0.defaultProvider = "fast"
            $0.providers = [ProviderRoute(name: "fast", policy: fast), ProviderRoute(name: "slow", policy: slow)]
        })
        for i in 0..<40 {
            h.script["\(provider)\(i)"] = [.processing, solved]
            h.receive(#"{"taskId":"\#(provider)\#(i)","provider":"\#(provider)"}"#)
        }
        var lowest = 100
        for _ in 0..<80 {
            h.now = h.now + .milliseconds(250)
            h.step()
            lowest = min(lowest, h.engine.inFlightLimit)
        }
        #expect(h.callTimes.count >= 40, "every task was polled (\(h.callTimes.count) calls)")
        if lowers {
            #expect(lowest < 100, "seconds late on a 2 s interval: the bound fell")
        } else {
            #expect(lowest == 100, "seconds late on a 60 s interval is on time: the bound stays (\(lowest))")
        }
    }

    @Test func offByDefault() {
        #expect(PollingEngine.Configuration().adaptiveInFlight == false)
    }
}
