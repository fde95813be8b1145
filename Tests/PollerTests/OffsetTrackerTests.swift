import Testing
@testable import Poller

@Suite struct OffsetTrackerTests {
    let p0 = PartitionID(topic: "captcha.tasks", partition: 0)
    let p1 = PartitionID(topic: "captcha.tasks", partition: 1)

    func token(_ result: OffsetTracker.TrackResult) -> OffsetTracker.Token {
        guard case .tracked(let token) = result else {
            Issue.record("expected tracked, got \(result)")
            return OffsetTracker.Token(partition: PartitionID(topic: "", partition: -1), offset: -1, epoch: 0)
        }
        return token
    }

    @Test func inOrderCompletionAdvancesByOne() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let a = token(tracker.track(p0, offset: 10))
        let b = token(tracker.track(p0, offset: 11))
        #expect(tracker.finish(a) == .store(p0, offset: 11))
        #expect(tracker.finish(b) == .store(p0, offset: 12))
    }

    @Test func outOfOrderCompletionWaitsForTheLowest() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let tokens = (0..<5).map { token(tracker.track(p0, offset: Int64($0))) }
        #expect(tracker.finish(tokens[3]) == OffsetTracker.Action.none)
        #expect(tracker.finish(tokens[1]) == OffsetTracker.Action.none)
        #expect(tracker.committableOffset(p0) == 0)
        #expect(tracker.finish(tokens[0]) == .store(p0, offset: 2))
        #expect(tracker.finish(tokens[2]) == .store(p0, offset: 4))
        #expect(tracker.finish(tokens[4]) == .store(p0, offset: 5))
        #expect(tracker.outstandingCount(p0) == 0)
    }

    @Test func gapsInOffsetsAreNotAssumedContiguous() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let a = token(tracker.track(p0, offset: 100))
        let b = token(tracker.track(p0, offset: 105)) // 101-104: compacted or transaction markers
        let c = token(tracker.track(p0, offset: 230))
        #expect(tracker.finish(b) == OffsetTracker.Action.none)
        #expect(tracker.finish(a) == .store(p0, offset: 230))
        #expect(tracker.finish(c) == .store(p0, offset: 231))
    }

    @Test func doubleFinishAndUnknownTokensAreDiscarded() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let a = token(tracker.track(p0, offset: 1))
        _ = tracker.track(p0, offset: 2)
        #expect(tracker.finish(a) == .store(p0, offset: 2))
        #expect(tracker.finish(a) == .discard)
        let forged = OffsetTracker.Token(partition: p0, offset: 7, epoch: a.epoch)
        #expect(tracker.finish(forged) == .discard)
    }

    @Test func redeliveredOffsetsAreReportedAsSeen() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        _ = tracker.track(p0, offset: 5)
        #expect(tracker.track(p0, offset: 5) == .alreadySeen)
        #expect(tracker.track(p0, offset: 3) == .alreadySeen)
        #expect(tracker.track(p1, offset: 0) == .notAssigned)
    }

    @Test func revokeStoresWatermarkAndDiscardsLateCompletions() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        tracker.assign(p1)
        let a = token(tracker.track(p0, offset: 0))
        let b = token(tracker.track(p0, offset: 1))
        let c = token(tracker.track(p0, offset: 2))
        let other = token(tracker.track(p1, offset: 40))
        #expect(tracker.finish(a) == .store(p0, offset: 1))
        #expect(tracker.finish(c) == OffsetTracker.Action.none)
        // Revoke while offset 1 is in flight: watermark 1 was already stored, nothing new.
        #expect(tracker.revoke(p0) == OffsetTracker.Action.none)
        #expect(tracker.finish(b) == .discard)
        #expect(tracker.revoke(p0) == .discard)
        // Other partitions go on.
        #expect(tracker.finish(other) == .store(p1, offset: 41))
    }

    @Test func revokeReturnsUnstoredWatermark() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        _ = tracker.track(p0, offset: 8)
        #expect(tracker.revoke(p0) == .store(p0, offset: 8))
    }

    @Test func reassignmentStartsANewEpoch() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let old = token(tracker.track(p0, offset: 3))
        _ = tracker.revoke(p0)
        tracker.assign(p0)
        let fresh = token(tracker.track(p0, offset: 3)) // replayed from the watermark
        #expect(tracker.finish(old) == .discard)
        #expect(tracker.finish(fresh) == .store(p0, offset: 4))
    }

    @Test func storeAllReportsEveryAdvancedPartition() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        tracker.assign(p1)
        _ = tracker.track(p0, offset: 2)
        let b = token(tracker.track(p1, offset: 9))
        _ = tracker.finish(b)
        let actions = Set(tracker.storeAll())
        #expect(actions == [.store(p0, offset: 2)])
        #expect(tracker.storeAll().isEmpty)
    }

    @Test func manyOutstandingOffsetsFinishedInRandomOrder() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        var random = SeededRandom(seed: 42)
        var tokens: [OffsetTracker.Token] = []
        var offset: Int64 = 0
        for _ in 0..<300_000 {
            offset += Int64.random(in: 1...3, using: &random)
            tokens.append(token(tracker.track(p0, offset: offset)))
        }
        let last = offset
        tokens.shuffle(using: &random)
        var lastStored: Int64 = -1
        var stores = 0
        for tok in tokens {
            if case .store(_, let stored) = tracker.finish(tok) {
                #expect(stored > lastStored)
                lastStored = stored
                stores += 1
            }
        }
        #expect(lastStored == last + 1)
        #expect(stores > 0)
        #expect(tracker.outstandingCount(p0) == 0)
    }

    @Test func watermarkIsAlwaysTheLowestUnfinished() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        var random = SeededRandom(seed: 7)
        var open: [OffsetTracker.Token] = []
        var next: Int64 = 0
        for _ in 0..<5_000 {
            if open.isEmpty || Bool.random(using: &random) {
                next += Int64.random(in: 1...4, using: &random)
                open.append(token(tracker.track(p0, offset: next)))
            } else {
                let tok = open.remove(at: Int.random(in: 0..<open.count, using: &random))
                _ = tracker.finish(tok)
            }
            let expected = open.map(\.offset).min() ?? next + 1
            #expect(tracker.committableOffset(p0) == expected)
        }
    }
}
