import TaskAPI
import Testing
@testable import Poller
@testable import PollerCore

@Suite struct TokenBucketTests {
    @Test func burstThenRate() {
        var bucket = TokenBucket(rate: 10, burst: 3)
        var granted = 0
        for _ in 0..<10 where bucket.tryAcquire(now: t(0)) { granted += 1 }
        #expect(granted == 3)
        #expect(bucket.nextAvailable(now: t(0)) == t(0.1))
        #expect(bucket.tryAcquire(now: t(0.05)) == false)
        #expect(bucket.tryAcquire(now: t(0.1)) == true)
        // Over ten seconds at most rate * seconds + burst calls.
        var total = 0
        for ms in stride(from: 100, through: 10_100, by: 7) where bucket.tryAcquire(now: t(Double(ms) / 1000)) { total += 1 }
        #expect(total <= 101)
        #expect(total >= 95)
    }

    @Test func timeGoingBackwardsGrantsNothingExtra() {
        var bucket = TokenBucket(rate: 1, burst: 1)
        #expect(bucket.tryAcquire(now: t(10)) == true)
        #expect(bucket.tryAcquire(now: t(5)) == false)
        #expect(bucket.tryAcquire(now: t(10.5)) == false)
        #expect(bucket.tryAcquire(now: t(11)) == true)
    }

    @Test func setRateSlowsDown() {
        var bucket = TokenBucket(rate: 10, burst: 1)
        #expect(bucket.tryAcquire(now: t(0)) == true)
        bucket.setRate(1, now: t(0))
        #expect(bucket.nextAvailable(now: t(0)) == t(1))
    }
}

@Suite struct ErrorBudgetTests {
    @Test func slowsDownWhenErrorsClimbAndRecovers() {
        var budget = ErrorBudget(window: .seconds(10), maxErrorRate: 0.2, minCalls: 10, maxErrors: 1000, maxSlowdown: 16)
        for i in 0..<20 { #expect(budget.record(error: false, now: t(Double(i) * 0.1)) == nil) }
        #expect(budget.slowdown(now: t(2)) == 1)
        var actions: [ErrorBudget.Action] = []
        for i in 0..<20 {
            if let action = budget.record(error: true, now: t(2 + Double(i) * 0.1)) { actions.append(action) }
        }
        // 20 errors of 40 calls: rate 0.5 = 2.5x over budget -> factor 4.
        #expect(actions.last == .setSlowdown(4))
        #expect(budget.slowdown(now: t(4)) == 4)
        // Ten seconds later the window is empty again.
        #expect(budget.reevaluate(now: t(15)) == .setSlowdown(1))
        #expect(budget.reevaluate(now: t(16)) == nil)
    }

    @Test func absoluteErrorCountAlsoCounts() {
        var budget = ErrorBudget(window: .seconds(60), maxErrorRate: 0.9, minCalls: 1_000_000, maxErrors: 10, maxSlowdown: 8)
        var last: ErrorBudget.Action?
        for i in 0..<100 { last = budget.record(error: true, now: t(Double(i) * 0.01)) ?? last }
        #expect(last == .setSlowdown(8))
    }

    @Test func theFactorRisesAtOnceButFallsOnlyAfterTheHold() {
        // One error per call pair hovers around a 0.5 rate against a 0.5 budget: the
        // factor would flip between 1 and 2 on every call without the hold.
        var budget = ErrorBudget(window: .seconds(10), maxErrorRate: 0.5, minCalls: 4, maxErrors: 1000, minHold: .seconds(5))
        var changes: [(Double, Double)] = []
        var now = 0.0
        for i in 0..<600 {
            now += 0.05
            let error = i % 2 == 0 || (i % 7 == 0)
            if case .setSlowdown(let f)? = budget.record(error: error, now: t(now)) { changes.append((now, f)) }
        }
        #expect(!changes.isEmpty)
        for (previous, next) in zip(changes, changes.dropFirst()) where next.1 < previous.1 {
            #expect(next.0 - previous.0 >= 5, "fell \(next.0 - previous.0) s after the last change")
        }
        #expect(changes.count <= 2 * Int(now / 5) + 2, "\(changes.count) changes in \(now) s")
    }

    @Test func fewCallsDoNotTrip() {
        var budget = ErrorBudget(window: .seconds(60), maxErrorRate: 0.2, minCalls: 20, maxErrors: 50)
        for i in 0..<5 { #expect(budget.record(error: true, now: t(Double(i))) == nil) }
    }
}

@Suite struct BanAndBreakerTests {
    @Test func banPausesEverythingUntilItEnds() {
        var ban = BanPause(banDuration: .seconds(600))
        #expect(ban.pausedUntil(now: t(0)) == nil)
        #expect(ban.reportBan(now: t(10)) == .pauseAll(until: t(610)))
        #expect(ban.reportBan(now: t(20)) == .pauseAll(until: t(620)))
        #expect(ban.pausedUntil(now: t(619.999)) == t(620))
        #expect(ban.pausedUntil(now: t(620)) == nil)
    }

    @Test func deadKeyStaysDeadOthersGoOn() {
        var breaker = AccountBreaker()
        let bad = ClientKey("bad"), good = ClientKey("good")
        let first = breaker.reportAccountError(key: bad, errorCode: "ERROR_ZERO_BALANCE", now: t(1))
        #expect(first == .failAllTasks(of: bad, AccountBreaker.Trip(errorCode: "ERROR_ZERO_BALANCE", errorDescription: nil, at: t(1))))
        #expect(breaker.reportAccountError(key: bad, errorCode: "ERROR_KEY_BANNED", now: t(2)) == nil)
        #expect(breaker.isDead(bad))
        #expect(breaker.trip(for: bad)?.errorCode == "ERROR_ZERO_BALANCE")
        #expect(!breaker.isDead(good))
    }
}

@Suite struct CallGateTests {
    let key = ClientKey("k1")
    let other = ClientKey("k2")

    @Test func concurrencyCapAndPermitReturn() {
        var gate = CallGate(rateLimit: 1000, maxConcurrent: 2)
        #expect(gate.admit(key: key, now: t(0)) == .proceed)
        #expect(gate.admit(key: key, now: t(0)) == .proceed)
        #expect(gate.admit(key: key, now: t(0)) == .atCapacity)
        #expect(gate.complete(key: key, result: .success, now: t(0.1)).isEmpty)
        #expect(gate.admit(key: key, now: t(0.1)) == .proceed)
        #expect(gate.concurrency.inUse == 2)
    }

    @Test func rateLimitGivesRetryTime() {
        var gate = CallGate(rateLimit: 2, burst: 1, maxConcurrent: 10)
        #expect(gate.admit(key: key, now: t(0)) == .proceed)
        #expect(gate.admit(key: key, now: t(0)) == .retryAt(t(0.5)))
        #expect(gate.concurrency.inUse == 1) // a refused call holds no permit
    }

    @Test func ipBanStopsAllCallsForTheBanPeriod() {
        var gate = CallGate(rateLimit: 100, maxConcurrent: 10, banDuration: .seconds(600))
        #expect(gate.admit(key: key, now: t(0)) == .proceed)
        #expect(gate.admit(key: other, now: t(0)) == .proceed)
        let actions = gate.complete(key: key, result: .ipBanned, now: t(1))
        #expect(actions.contains(.pauseAllUntil(t(601))))
        #expect(gate.admit(key: key, now: t(2)) == .retryAt(t(601)))
        #expect(gate.admit(key: other, now: t(300)) == .retryAt(t(601)))
        // The other call in flight during the ban still returns its permit.
        _ = gate.complete(key: other, result: .transientError, now: t(2))
        #expect(gate.concurrency.inUse == 0)
        #expect(gate.admit(key: other, now: t(601)) == .proceed)
    }

    @Test func accountErrorKillsOnlyThatKey() {
        var gate = CallGate(rateLimit: 100, maxConcurrent: 10)
        #expect(gate.admit(key: key, now: t(0)) == .proceed)
        let actions = gate.complete(key: key, result: .accountError(code: "ERROR_KEY_DOES_NOT_EXIST", description: nil), now: t(1))
        let trip = AccountBreaker.Trip(errorCode: "ERROR_KEY_DOES_NOT_EXIST", errorDescription: nil, at: t(1))
        #expect(actions == [.failAllTasks(of: key, trip)])
        #expect(gate.admit(key: key, now: t(2)) == .keyDead(trip))
        #expect(gate.admit(key: other, now: t(2)) == .proceed)
        // A second account error of the same key (a call that was already in flight) fails nothing new.
        #expect(gate.admit(key: other, now: t(2)) == .proceed)
        #expect(gate.complete(key: key, result: .accountError(code: "ERROR_KEY_DOES_NOT_EXIST", description: nil), now: t(3)).isEmpty)
    }

    @Test func risingErrorsSlowTheRequestRate() {
        var gate = CallGate(rateLimit: 100, burst: 1, maxConcurrent: 1000,
                            errorBudget: ErrorBudget(window: .seconds(10), maxErrorRate: 0.1, minCalls: 10, maxErrors: 1000, maxSlowdown: 8))
        var slowdowns: [Double] = []
        var now = 0.0
        for i in 0..<40 {
            now += 0.01
            guard gate.admit(key: key, now: t(now)) == .proceed else { continue }
            for action in gate.complete(key: key, result: i % 2 == 0 ? .transientError : .success, now: t(now)) {
                if case .setSlowdown(let f) = action { slowdowns.append(f) }
            }
        }
        #expect(slowdowns.last == 8)
        #expect(gate.slowdown == 8)
        #expect(gate.bucket.rate == 12.5)
        #expect(gate.tick(now: t(now + 11)) == [.setSlowdown(1)])
        #expect(gate.bucket.rate == 100)
    }
}

@Suite struct InFlightGateTests {
    @Test func hysteresis() {
        var gate = InFlightGate(highWater: 3, lowWater: 1)
        #expect(gate.added() == nil)
        #expect(gate.added() == nil)
        #expect(gate.added() == .pause)
        #expect(gate.added() == nil) // already paused
        #expect(gate.removed() == nil) // 3
        #expect(gate.removed() == nil) // 2
        #expect(gate.removed() == .resume) // 1
        #expect(gate.removed() == nil)
        #expect(gate.removed() == nil) // never negative
        #expect(gate.count == 0)
        #expect(gate.wanted == .resume)
    }

    @Test func bulkChangesOnRevoke() {
        var gate = InFlightGate(highWater: 100, lowWater: 50)
        #expect(gate.added(150) == .pause)
        #expect(gate.wanted == .pause)
        #expect(gate.removed(120) == .resume)
        #expect(gate.count == 30)
    }
}

@Suite struct CallBudgetShareTests {
    @Test func aShareScalesTheRateAndTheBurst() {
        var gate = CallGate(rateLimit: 100, burst: 100, maxConcurrent: 1_000)
        gate.setShare(0.25, now: t(0))
        #expect(gate.callsPerSecond == 25)
        // The saved burst shrinks with the share: members together never burst past the account.
        var granted = 0
        for _ in 0..<200 where gate.admit(key: ClientKey("k"), now: t(0)) == .proceed { granted += 1 }
        #expect(granted == 25)
        // Over ten seconds at most 25/s.
        var total = 0
        for ms in stride(from: 10, through: 10_000, by: 10) {
            while gate.admit(key: ClientKey("k"), now: t(Double(ms) / 1000)) == .proceed { total += 1 }
        }
        #expect(total >= 245 && total <= 251, "\(total)")
    }

    @Test func theShareAndTheSlowdownMultiply() {
        var gate = CallGate(rateLimit: 100, maxConcurrent: 10,
                            errorBudget: ErrorBudget(window: .seconds(10), maxErrorRate: 0.2, minCalls: 10, maxErrors: 1000, maxSlowdown: 16))
        gate.setShare(0.5, now: t(0))
        var now = 0.0
        while gate.slowdown == 1, now < 10 {
            now += 0.01
            #expect(gate.admit(key: ClientKey("k"), now: t(now)) != .atCapacity)
            _ = gate.complete(key: ClientKey("k"), result: .transientError, now: t(now))
        }
        let factor = gate.slowdown
        #expect(factor > 1)
        #expect(gate.callsPerSecond == 100 * 0.5 / factor)
        gate.setShare(1, now: t(now))
        #expect(gate.slowdown == factor && gate.callsPerSecond == 100 / factor, "the slowdown stays when the share changes")
    }

    @Test func aShareIsClampedAndNeverStopsTheRate() {
        var gate = CallGate(rateLimit: 100, maxConcurrent: 10)
        gate.setShare(0, now: t(0))
        #expect(gate.share == CallGate.minimumShare)
        #expect(gate.callsPerSecond > 0)
        gate.setShare(3, now: t(0))
        #expect(gate.share == 1 && gate.callsPerSecond == 100)
    }
}

@Suite struct PollLatenessTests {
    @Test func bucketsAreCumulativeOnExport() {
        var lateness = PollLateness()
        for ms: Int64 in [0, 5, 6, 100, 999, 70_000, -3] { lateness.record(milliseconds: ms) }
        #expect(lateness.count == 7)
        #expect(lateness.sumMilliseconds == 0 + 5 + 6 + 100 + 999 + 70_000 + 0)
        let cumulative = lateness.cumulativeCounts
        #expect(cumulative.count == PollLateness.bucketBounds.count + 1)
        #expect(cumulative[0] == 3, "0, 5 and the clamped -3 are within 5 ms")
        #expect(cumulative[2] == 5, "6 and 100 within 100 ms")
        #expect(cumulative[5] == 6, "999 within 1 s")
        #expect(cumulative.last == 7, "70 s only under +Inf")
        let text = PipelineMetrics.histogramLines("x", lateness)
        #expect(text.contains("x_bucket{le=\"0.005\"} 3\n"))
        #expect(text.contains("x_bucket{le=\"+Inf\"} 7\n"))
        #expect(text.contains("x_count 7\n"))
    }

    @Test func theEngineRecordsHowLateACallStarts() {
        var engine = PollingEngine(configuration: config {
            $0.policy = testPolicy(initialDelay: .seconds(5), interval: .seconds(3), minInterval: .zero)
        })
        let partition = PartitionID(topic: "captcha.tasks", partition: 0)
        _ = engine.assigned([PollingEngine.AssignedPartition(partition)])
        let source = MessageSource(topic: "captcha.tasks", partition: 0, offset: 0, timestamp: nil)
        _ = engine.receive(InputRecord(source: source, key: nil, value: Array(#"{"taskId":"a","createdAt":"2027-01-15T08:00:00Z"}"#.utf8)),
                           now: Timestamp(rfc3339: "2027-01-15T08:00:00Z")!)
        let due = Timestamp(rfc3339: "2027-01-15T08:00:05Z")!
        let calls = engine.tick(now: due + .milliseconds(300))
        #expect(calls.count == 1)
        #expect(engine.pollLateness.count == 1)
        #expect(engine.pollLateness.sumMilliseconds == 300)
        #expect(engine.pollLateness.cumulativeCounts[4] == 1 && engine.pollLateness.cumulativeCounts[3] == 0, "in the 500 ms bucket")
    }
}
