import Testing
@testable import Poller
@testable import PollerCore
import TaskModel

@Suite struct PollingPolicyTests {
    /// capmonster's profile: 5 s first delay, 3 s interval, 2 s minimum, 100 polls, 300 s window.
    let policy = PollingPolicy(profile: .capmonster)
    var noJitter = ExtremeRandom(high: false)

    @Test func theProfileFeedsEveryPolicyValue() {
        let profile = ProviderProfile(name: "p", baseURL: "http://p", minPollInterval: .seconds(7), defaultPollInterval: .seconds(11),
                                      maxPolls: 13, initialDelay: .seconds(17), resultWindow: .seconds(190), ipBanPause: .seconds(23),
                                      safetyMargin: .seconds(29), backoffBase: .seconds(31), backoffMax: .seconds(37))
        let p = PollingPolicy(profile: profile)
        #expect(p == PollingPolicy(initialDelay: .seconds(17), interval: .seconds(11), minInterval: .seconds(7), maxPolls: 13,
                                   window: .seconds(190), safetyMargin: .seconds(29), backoffBase: .seconds(31), backoffMax: .seconds(37)))
        #expect(PollingEngine.Configuration(profile: profile).banDuration == .seconds(23))
        #expect(PollingEngine.Configuration(profile: profile).defaultProvider == "p")
    }

    @Test func firstPollAfterInitialDelayFromCreation() {
        #expect(policy.firstPoll(createdAt: t(0), now: t(1)) == .pollAt(t(5)))
        // Seen late (replay, lag): poll right away, the window is measured from creation.
        #expect(policy.firstPoll(createdAt: t(0), now: t(60)) == .pollAt(t(60)))
    }

    @Test func arrivingPastTheDeadlineExpiresWithoutACall() {
        #expect(policy.deadline(createdAt: t(0)) == t(295))
        #expect(policy.firstPoll(createdAt: t(0), now: t(295)) == .pollAt(t(295)))
        #expect(policy.firstPoll(createdAt: t(0), now: t(295.001)) == .expire)
        #expect(policy.firstPoll(createdAt: t(0), now: t(3600)) == .expire)
    }

    @Test mutating func processingPollsEveryInterval() {
        let d = policy.nextPoll(after: .processing, pollsSoFar: 1, lastPollAt: t(5), createdAt: t(0), now: t(5.4), using: &noJitter)
        #expect(d == .pollAt(t(8)))
        // A slow answer: never poll in the past.
        let late = policy.nextPoll(after: .processing, pollsSoFar: 1, lastPollAt: t(5), createdAt: t(0), now: t(20), using: &noJitter)
        #expect(late == .pollAt(t(20)))
    }

    @Test mutating func neverFasterThanMinInterval() {
        var p = policy
        p.interval = .milliseconds(500)
        p.minInterval = .seconds(2)
        let d = p.nextPoll(after: .processing, pollsSoFar: 1, lastPollAt: t(5), createdAt: t(0), now: t(5.1), using: &noJitter)
        #expect(d == .pollAt(t(7)))
        p.backoffBase = .milliseconds(100)
        let b = p.nextPoll(after: .transient, pollsSoFar: 1, lastPollAt: t(5), createdAt: t(0), now: t(5.1), backoffAttempt: 1, using: &noJitter)
        #expect(b == .pollAt(t(7)))
    }

    @Test mutating func pollCapGivesExhausted() {
        let d = policy.nextPoll(after: .processing, pollsSoFar: 100, lastPollAt: t(100), createdAt: t(0), now: t(100), using: &noJitter)
        #expect(d == .exhausted)
        var none = policy
        none.maxPolls = 0
        #expect(none.firstPoll(createdAt: t(0), now: t(0)) == .exhausted)
    }

    @Test mutating func lastPollLandsOnTheDeadline() {
        let d = policy.nextPoll(after: .processing, pollsSoFar: 50, lastPollAt: t(292.5), createdAt: t(0), now: t(292.6), using: &noJitter)
        #expect(d == .pollAt(t(295)))
        let none = policy.nextPoll(after: .processing, pollsSoFar: 50, lastPollAt: t(294), createdAt: t(0), now: t(294.2), using: &noJitter)
        #expect(none == .expire)
        let past = policy.nextPoll(after: .processing, pollsSoFar: 50, lastPollAt: t(294), createdAt: t(0), now: t(296), using: &noJitter)
        #expect(past == .expire)
    }

    @Test mutating func backoffDoublesIsCappedAndJittered() {
        var high = ExtremeRandom(high: true)
        // Equal jitter: half fixed, half random; low draw gives the fixed half.
        #expect(policy.backoff(attempt: 1, using: &noJitter) == .milliseconds(2000)) // max(1500, minInterval)
        #expect(policy.backoff(attempt: 1, using: &high) == .seconds(3))
        #expect(policy.backoff(attempt: 2, using: &high) == .seconds(6))
        #expect(policy.backoff(attempt: 3, using: &noJitter) == .seconds(6))
        #expect(policy.backoff(attempt: 10, using: &high) == .seconds(30))
        #expect(policy.backoff(attempt: 1_000, using: &high) == .seconds(30))
        var random = SeededRandom(seed: 3)
        for attempt in 1...20 {
            let b = policy.backoff(attempt: attempt, using: &random)
            #expect(b >= .seconds(2) && b <= .seconds(30))
        }
    }

    @Test mutating func transientBackoffNeverBeyondDeadline() {
        var high = ExtremeRandom(high: true)
        let d = policy.nextPoll(after: .transient, pollsSoFar: 3, lastPollAt: t(280), createdAt: t(0), now: t(280.1), backoffAttempt: 5, using: &high)
        #expect(d == .pollAt(t(295)))
    }

    @Test mutating func slowdownStretchesSpacing() {
        let d = policy.nextPoll(after: .processing, pollsSoFar: 1, lastPollAt: t(10), createdAt: t(0), now: t(10), slowdown: 4, using: &noJitter)
        #expect(d == .pollAt(t(22)))
    }

    @Test func everyDecisionRespectsTheInvariants() {
        var random = SeededRandom(seed: 99)
        for _ in 0..<20_000 {
            let created = t(Double(Int.random(in: 0...1000, using: &random)))
            let last = created + .milliseconds(Int64.random(in: 0...400_000, using: &random))
            let now = last + .milliseconds(Int64.random(in: 0...10_000, using: &random))
            let outcome: PollingPolicy.Outcome = Bool.random(using: &random) ? .processing : .transient
            let polls = Int.random(in: 1...120, using: &random)
            let d = policy.nextPoll(after: outcome, pollsSoFar: polls, lastPollAt: last, createdAt: created, now: now,
                                    backoffAttempt: Int.random(in: 1...12, using: &random), using: &random)
            switch d {
            case .pollAt(let at):
                #expect(at >= now)
                #expect(at >= last + policy.minInterval)
                #expect(at <= policy.deadline(createdAt: created))
                #expect(polls < policy.maxPolls)
            case .expire:
                #expect(now > policy.deadline(createdAt: created) || last + policy.minInterval > policy.deadline(createdAt: created))
            case .exhausted:
                #expect(polls >= policy.maxPolls)
            }
        }
    }
}

@Suite struct TimestampTests {
    @Test func rfc3339RoundTrip() {
        let ts = Timestamp(rfc3339: "2026-11-29T16:34:30.123Z")
        #expect(ts?.millisecondsSinceEpoch == 1_795_970_070_123)
        #expect(ts?.rfc3339 == "2026-11-29T16:34:30.123Z")
        #expect(Timestamp(rfc3339: "2026-11-29T18:34:30.1239+02:00") == ts)
        #expect(Timestamp(rfc3339: "1970-01-01t00:00:00z")?.millisecondsSinceEpoch == 0)
        #expect(Timestamp(millisecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp(rfc3339: "2024-02-29T00:00:00Z") != nil)
    }

    @Test func rfc3339RejectsNonsense() {
        for bad in ["", "2026-11-29", "2026-11-29 16:34:30Z", "2026-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
                    "2026-11-29T24:00:00Z", "2026-11-29T16:34:30", "2026-11-29T16:34:30.Z", "2026-11-29T16:34:30+0200",
                    "2026-11-29T16:34:30Zjunk", "１２３４-11-29T16:34:30Z"] {
            #expect(Timestamp(rfc3339: bad) == nil, "\(bad)")
        }
    }

    @Test func civilConversionMatchesAcrossCenturies() {
        var random = SeededRandom(seed: 5)
        for _ in 0..<10_000 {
            let ms = Int64.random(in: -62_135_596_800_000...253_402_300_799_999, using: &random)
            let ts = Timestamp(millisecondsSinceEpoch: ms)
            #expect(Timestamp(rfc3339: ts.rfc3339) == ts)
        }
    }
}
