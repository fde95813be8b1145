import Testing
@testable import Poller
@testable import PollerCore

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

    /// Commits what is pending and returns the offset committed for `partition` (nil: nothing new).
    func commitOffset(_ tracker: inout OffsetTracker, _ partition: PartitionID) -> Int64? {
        tracker.pendingCommits().first { $0.partition == partition }?.offset
    }

    /// The finished offsets a commit records above its offset.
    func recorded(_ commit: OffsetTracker.Commit?) throws -> [Range<Int64>] {
        guard let commit else { return [] }
        return try OffsetCommitMetadata.decode(commit.metadata, base: commit.offset)
    }

    @Test func inOrderCompletionAdvancesByOne() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let a = token(tracker.track(p0, offset: 10))
        let b = token(tracker.track(p0, offset: 11))
        #expect(tracker.finish(a) == .finished)
        #expect(commitOffset(&tracker, p0) == 11)
        #expect(tracker.finish(b) == .finished)
        #expect(commitOffset(&tracker, p0) == 12)
        #expect(tracker.pendingCommits().isEmpty, "nothing changed since")
    }

    @Test func outOfOrderCompletionRecordsFinishedOffsetsAboveTheWatermark() throws {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let tokens = (0..<5).map { token(tracker.track(p0, offset: Int64($0))) }
        _ = tracker.finish(tokens[3])
        _ = tracker.finish(tokens[1])
        let first = tracker.pendingCommits().first
        #expect(first?.offset == 0)
        #expect(first?.finishedAbove == 2)
        #expect(try recorded(first) == [1..<2, 3..<4])
        _ = tracker.finish(tokens[0])
        let second = tracker.pendingCommits().first
        #expect(second?.offset == 2)
        #expect(try recorded(second) == [3..<4])
        _ = tracker.finish(tokens[2])
        _ = tracker.finish(tokens[4])
        let last = tracker.pendingCommits().first
        #expect(last?.offset == 5)
        #expect(last?.metadata == "")
        #expect(tracker.outstandingCount(p0) == 0)
    }

    @Test func gapsInOffsetsJoinTheFinishedRunAroundThem() throws {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let a = token(tracker.track(p0, offset: 100))
        let b = token(tracker.track(p0, offset: 105)) // 101-104: compacted or transaction markers
        let c = token(tracker.track(p0, offset: 230))
        _ = tracker.finish(b)
        let commit = tracker.pendingCommits().first
        #expect(commit?.offset == 100)
        // 101...105 never reach this consumer or are finished: one run, and 230 stays unfinished.
        #expect(try recorded(commit) == [101..<230])
        _ = tracker.finish(a)
        #expect(commitOffset(&tracker, p0) == 230)
        _ = tracker.finish(c)
        #expect(commitOffset(&tracker, p0) == 231)
    }

    @Test func doubleFinishAndUnknownTokensAreDiscarded() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let a = token(tracker.track(p0, offset: 1))
        _ = tracker.track(p0, offset: 2)
        #expect(tracker.finish(a) == .finished)
        #expect(tracker.finish(a) == .discarded)
        let forged = OffsetTracker.Token(partition: p0, offset: 7, epoch: a.epoch)
        #expect(tracker.finish(forged) == .discarded)
    }

    @Test func redeliveredOffsetsAreReportedAsSeen() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        _ = tracker.track(p0, offset: 5)
        #expect(tracker.track(p0, offset: 5) == .alreadySeen)
        #expect(tracker.track(p0, offset: 3) == .alreadySeen)
        #expect(tracker.track(p1, offset: 0) == .notAssigned)
    }

    @Test func revokeReturnsTheFinalCommitAndDiscardsLateCompletions() throws {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        tracker.assign(p1)
        let a = token(tracker.track(p0, offset: 0))
        let b = token(tracker.track(p0, offset: 1))
        let c = token(tracker.track(p0, offset: 2))
        let other = token(tracker.track(p1, offset: 40))
        _ = tracker.finish(a)
        #expect(commitOffset(&tracker, p0) == 1)
        _ = tracker.finish(c)
        // Revoke while offset 1 is in flight: 1 stays the watermark, 2 is recorded finished.
        let final = tracker.revoke(p0)
        #expect(final?.offset == 1)
        #expect(try recorded(final) == [2..<3])
        #expect(tracker.finish(b) == .discarded)
        #expect(tracker.revoke(p0) == nil)
        // Other partitions go on.
        _ = tracker.finish(other)
        #expect(commitOffset(&tracker, p1) == 41)
    }

    @Test func revokeReturnsNothingWhenTheLastCommitStands() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let a = token(tracker.track(p0, offset: 8))
        _ = tracker.finish(a)
        #expect(commitOffset(&tracker, p0) == 9)
        #expect(tracker.revoke(p0) == nil)
    }

    @Test func reassignmentStartsANewEpoch() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let old = token(tracker.track(p0, offset: 3))
        _ = tracker.revoke(p0)
        tracker.assign(p0)
        let fresh = token(tracker.track(p0, offset: 3)) // replayed from the watermark
        #expect(tracker.finish(old) == .discarded)
        #expect(tracker.finish(fresh) == .finished)
        #expect(commitOffset(&tracker, p0) == 4)
    }

    @Test func aFailedCommitIsDueAgain() {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        let a = token(tracker.track(p0, offset: 0))
        _ = tracker.finish(a)
        let commits = tracker.pendingCommits()
        #expect(commits.map(\.offset) == [1])
        #expect(tracker.pendingCommits().isEmpty)
        tracker.commitFailed(commits)
        #expect(tracker.pendingCommits().map(\.offset) == [1])
    }

    @Test func nothingIsCommittedBeforeAnythingWasRead() {
        var tracker = OffsetTracker()
        tracker.assign(p0, finished: [12..<15])
        #expect(tracker.pendingCommits().isEmpty)
        #expect(tracker.revoke(p0) == nil, "the last owner's commit stands as it is")
    }

    @Test func inheritedFinishedOffsetsAreSkippedAndKeptInTheCommit() throws {
        var tracker = OffsetTracker()
        // The last owner committed 10 and recorded 11, 12 and 15...17 as finished.
        tracker.assign(p0, finished: [11..<13, 15..<18])
        let ten = token(tracker.track(p0, offset: 10))
        #expect(tracker.track(p0, offset: 11) == .alreadyFinished)
        // Before anything else finishes, the commit still records what is inherited.
        let early = tracker.pendingCommits().first
        #expect(early?.offset == 10)
        #expect(try recorded(early) == [11..<13, 15..<18])
        #expect(tracker.track(p0, offset: 12) == .alreadyFinished)
        let thirteen = token(tracker.track(p0, offset: 13))
        _ = tracker.finish(ten)
        let mid = tracker.pendingCommits().first
        #expect(mid?.offset == 13)
        #expect(try recorded(mid) == [15..<18])
        _ = tracker.finish(thirteen)
        // 14 not read yet: the watermark is 14, and 15...17 are still recorded.
        let late = tracker.pendingCommits().first
        #expect(late?.offset == 14)
        #expect(try recorded(late) == [15..<18])
        let fourteen = token(tracker.track(p0, offset: 14))
        for offset in Int64(15)..<18 { #expect(tracker.track(p0, offset: offset) == .alreadyFinished) }
        let eighteen = token(tracker.track(p0, offset: 18))
        _ = tracker.finish(fourteen)
        #expect(commitOffset(&tracker, p0) == 18)
        _ = tracker.finish(eighteen)
        #expect(commitOffset(&tracker, p0) == 19)
    }

    @Test func inheritedRunAtTheWatermarkMovesTheCommittedOffset() throws {
        var tracker = OffsetTracker()
        tracker.assign(p0, finished: [6..<9, 20..<21])
        let five = token(tracker.track(p0, offset: 5))
        _ = tracker.finish(five)
        // 6...8 were finished by the last owner: the commit moves past them unread.
        let commit = tracker.pendingCommits().first
        #expect(commit?.offset == 9)
        #expect(try recorded(commit) == [20..<21])
    }

    @Test func theSizeCapTruncatesToTheLowestFinishedOffsets() throws {
        var tracker = OffsetTracker(maxMetadataBytes: 64)
        tracker.assign(p0)
        let first = token(tracker.track(p0, offset: 0))
        var finished: [Int64] = []
        for k in Int64(1)..<4_000 {
            let tok = token(tracker.track(p0, offset: k * 1_000))
            if k % 2 == 0 { // odd ones stay unfinished: 2,000 separate finished runs
                _ = tracker.finish(tok)
                finished.append(k * 1_000)
            }
        }
        let commit = try #require(tracker.pendingCommits().first)
        #expect(commit.offset == 0)
        #expect(commit.truncated)
        #expect(commit.metadata.utf8.count <= 64)
        let kept = try recorded(commit)
        #expect(!kept.isEmpty)
        // Only finished offsets, and the lowest ones (with the unread gaps around them).
        let keptFinished = finished.filter { offset in kept.contains { $0.contains(offset) } }
        #expect(keptFinished == Array(finished.prefix(keptFinished.count)))
        _ = tracker.finish(first)
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
        var lastCommitted: Int64 = -1
        for (i, tok) in tokens.enumerated() {
            _ = tracker.finish(tok)
            if i % 10_000 == 0, let committed = commitOffset(&tracker, p0) {
                #expect(committed >= lastCommitted)
                lastCommitted = committed
            }
        }
        #expect(commitOffset(&tracker, p0) == last + 1)
        #expect(tracker.outstandingCount(p0) == 0)
    }

    @Test func commitNeverRecordsAnUnfinishedOffset() throws {
        var tracker = OffsetTracker()
        tracker.assign(p0)
        var random = SeededRandom(seed: 7)
        var open: [OffsetTracker.Token] = []
        var finished = Set<Int64>()
        var next: Int64 = 0
        for step in 0..<5_000 {
            if open.isEmpty || Bool.random(using: &random) {
                next += Int64.random(in: 1...4, using: &random)
                open.append(token(tracker.track(p0, offset: next)))
            } else {
                let tok = open.remove(at: Int.random(in: 0..<open.count, using: &random))
                _ = tracker.finish(tok)
                finished.insert(tok.offset)
            }
            let expected = open.map(\.offset).min() ?? next + 1
            #expect(tracker.committableOffset(p0) == expected)
            if step % 50 == 0, let commit = tracker.currentCommit(p0) {
                let unfinished = Set(open.map(\.offset))
                for range in try recorded(commit) {
                    #expect(!unfinished.contains { range.contains($0) }, "an unfinished offset recorded as finished")
                }
            }
        }
    }
}
