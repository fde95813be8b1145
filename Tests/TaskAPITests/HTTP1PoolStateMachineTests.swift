import NIOCore
import Testing
@testable import TaskAPI

/// The pool's decisions without sockets: requests are strings, time is a number of
/// milliseconds, and each test drives the events a socket would report.
@Suite("HTTP/1.1 pool decisions")
struct HTTP1PoolStateMachineTests {
    typealias Machine = HTTP1PoolStateMachine<String>
    typealias Failure = HTTP1ConnectionPool.Failure

    static func machine(max: Int = 2, readMs: Int64 = 1_000, requestMs: Int64 = 4_000, idleMs: Int64 = 10_000) -> Machine {
        Machine(maxConnections: max, timeouts: .init(read: .milliseconds(readMs), request: .milliseconds(requestMs),
                                                     idle: .milliseconds(idleMs)))
    }

    static func at(_ ms: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(1_000_000_000 + ms * 1_000_000)) }

    /// The actions in a form tests can compare.
    enum Step: Equatable {
        case connect(Int)
        case start(String, on: Int)
        case fail([String], Failure)
        case close(Int)
    }

    static func steps(_ actions: [Machine.Action]) -> [Step] {
        actions.map { action in
            switch action {
            case .connect(let id): .connect(id)
            case .start(let request, let id): .start(request, on: id)
            case .fail(let requests, let failure): .fail(requests, failure)
            case .close(let id): .close(id)
            }
        }
    }

    @Test func aConnectionIsOpenedForTheFirstRequestAndReusedForTheNext() {
        var m = Self.machine()
        #expect(Self.steps(m.enqueue(["a"], now: Self.at(0))) == [.connect(0)])
        #expect(Self.steps(m.connected(0, now: Self.at(5))) == [.start("a", on: 0)])
        m.read(0, now: Self.at(10))
        let (answered, after) = m.answered(0, keepAlive: true, now: Self.at(10))
        #expect(answered == "a")
        #expect(after.isEmpty)
        #expect(Self.steps(m.enqueue(["b"], now: Self.at(20))) == [.start("b", on: 0)], "no new connection")
        #expect(m.connectionCount == 1)
    }

    @Test func neverMoreConnectionsThanTheLimitAndWaitingRequestsGoInOrder() {
        var m = Self.machine(max: 2)
        #expect(Self.steps(m.enqueue(["a", "b", "c", "d", "e"], now: Self.at(0))) == [.connect(0), .connect(1)])
        #expect(Self.steps(m.connected(1, now: Self.at(1))) == [.start("a", on: 1)])
        #expect(Self.steps(m.connected(0, now: Self.at(1))) == [.start("b", on: 0)])
        #expect(m.connectionCount == 2 && m.busyCount == 2 && m.waitingCount == 3)
        #expect(Self.steps(m.enqueue(["f"], now: Self.at(2))).isEmpty, "at the limit nothing opens")
        let (first, next) = m.answered(1, keepAlive: true, now: Self.at(3))
        #expect(first == "a")
        #expect(Self.steps(next) == [.start("c", on: 1)])
    }

    @Test func anAnswerWithoutKeepAliveClosesItsConnectionWhichCountsUntilClosed() {
        var m = Self.machine(max: 1)
        _ = m.enqueue(["a", "b"], now: Self.at(0))
        _ = m.connected(0, now: Self.at(1))
        let (answered, actions) = m.answered(0, keepAlive: false, now: Self.at(2))
        #expect(answered == "a")
        #expect(Self.steps(actions) == [.close(0)], "b waits: the closing connection still counts")
        #expect(Self.steps(m.closed(0, now: Self.at(3))) == [.connect(1)])
        #expect(Self.steps(m.connected(1, now: Self.at(4))) == [.start("b", on: 1)])
    }

    @Test func aRequestLostToAnIdleCloseGoesOutAgainFirstAndOnlyOnce() {
        var m = Self.machine(max: 1)
        _ = m.enqueue(["a"], now: Self.at(0))
        _ = m.connected(0, now: Self.at(1))
        _ = m.answered(0, keepAlive: true, now: Self.at(2))
        _ = m.enqueue(["b", "c"], now: Self.at(3)) // b goes out on the reused connection
        // The server closes it before any answer byte: b goes out again, ahead of c.
        #expect(Self.steps(m.closed(0, now: Self.at(4))) == [.connect(1)])
        #expect(Self.steps(m.connected(1, now: Self.at(5))) == [.start("b", on: 1)])
        // A retried request lost the same way on another reused connection fails.
        var twice = Self.machine(max: 2)
        _ = twice.enqueue(["x1", "x2"], now: Self.at(0))
        _ = twice.connected(0, now: Self.at(1))
        _ = twice.connected(1, now: Self.at(1))
        _ = twice.answered(0, keepAlive: true, now: Self.at(2))
        _ = twice.answered(1, keepAlive: true, now: Self.at(2))
        #expect(Self.steps(twice.enqueue(["y"], now: Self.at(3))) == [.start("y", on: 1)])
        #expect(Self.steps(twice.closed(1, now: Self.at(4))) == [.start("y", on: 0)])
        #expect(Self.steps(twice.closed(0, now: Self.at(5))) == [.fail(["y"], .closed)], "a retry is not retried")
    }

    @Test func aCloseAfterAnswerBytesOrOnAFirstUseFailsTheCall() {
        // First use: the server never answered anything on this connection.
        var fresh = Self.machine(max: 1)
        _ = fresh.enqueue(["a"], now: Self.at(0))
        _ = fresh.connected(0, now: Self.at(1))
        #expect(Self.steps(fresh.closed(0, now: Self.at(2))) == [.fail(["a"], .closed)])
        // Reused, but part of the answer had arrived: sending it again could double it.
        var partial = Self.machine(max: 1)
        _ = partial.enqueue(["a"], now: Self.at(0))
        _ = partial.connected(0, now: Self.at(1))
        _ = partial.answered(0, keepAlive: true, now: Self.at(2))
        _ = partial.enqueue(["b"], now: Self.at(3))
        partial.read(0, now: Self.at(4))
        #expect(Self.steps(partial.closed(0, now: Self.at(5))) == [.fail(["b"], .closed)])
    }

    @Test func aConnectFailureFailsTheWaitingOnlyWhenNothingElseCanServeThem() {
        var m = Self.machine(max: 2)
        _ = m.enqueue(["a", "b", "c"], now: Self.at(0))
        #expect(Self.steps(m.connectFailed(0, .connectTimeout)).isEmpty, "connection 1 is still opening")
        #expect(Self.steps(m.connectFailed(1, .connect("refused"))) == [.fail(["a", "b", "c"], .connect("refused"))])
        // With one connection open, a failed second one leaves the requests to it.
        var open = Self.machine(max: 2)
        _ = open.enqueue(["a"], now: Self.at(0))
        _ = open.connected(0, now: Self.at(1))
        _ = open.enqueue(["b", "c"], now: Self.at(2))
        #expect(Self.steps(open.connectFailed(1, .connect("refused"))).isEmpty)
        let (_, next) = open.answered(0, keepAlive: true, now: Self.at(3))
        #expect(Self.steps(next) == [.start("b", on: 0), .connect(2)], "b on the open one; c tries a new connection")
    }

    @Test func theSweepEndsWhatIsPastItsTime() {
        var m = Self.machine(max: 2, readMs: 1_000, requestMs: 4_000, idleMs: 10_000)
        _ = m.enqueue(["silent", "slow"], now: Self.at(0))
        _ = m.connected(0, now: Self.at(0))
        _ = m.connected(1, now: Self.at(0))
        #expect(Self.steps(m.sweep(now: Self.at(900))).isEmpty)
        m.read(1, now: Self.at(900)) // "slow" trickles bytes, "silent" gets none
        let read = Self.steps(m.sweep(now: Self.at(1_001)))
        #expect(read == [.fail(["silent"], .readTimeout), .close(0)])
        for ms in stride(from: 1_800, through: 3_600, by: 900) { m.read(1, now: Self.at(Int64(ms))) }
        #expect(Self.steps(m.sweep(now: Self.at(4_000))) == [.fail(["slow"], .deadlineExceeded), .close(1)])

        // A request that waited for a connection past its deadline.
        var waiting = Self.machine(max: 1, requestMs: 4_000)
        _ = waiting.enqueue(["a"], now: Self.at(0))
        _ = waiting.connected(0, now: Self.at(1))
        _ = waiting.enqueue(["b"], now: Self.at(100))
        m = waiting
        m.read(0, now: Self.at(3_900))
        #expect(Self.steps(m.sweep(now: Self.at(4_100))) == [.fail(["b"], .deadlineExceeded), .fail(["a"], .deadlineExceeded), .close(0)])

        // An idle connection past the idle timeout closes; one in use does not.
        var idle = Self.machine(max: 1, idleMs: 10_000)
        _ = idle.enqueue(["a"], now: Self.at(0))
        _ = idle.connected(0, now: Self.at(0))
        _ = idle.answered(0, keepAlive: true, now: Self.at(10))
        #expect(Self.steps(idle.sweep(now: Self.at(10_000))).isEmpty)
        #expect(Self.steps(idle.sweep(now: Self.at(10_011))) == [.close(0)])
        #expect(Self.steps(idle.enqueue(["b"], now: Self.at(10_020))).isEmpty, "the closing connection still counts")
        #expect(Self.steps(idle.closed(0, now: Self.at(10_030))) == [.connect(1)])
    }

    @Test func anUnaskedAnswerClosesTheConnection() {
        var m = Self.machine()
        _ = m.enqueue(["a"], now: Self.at(0))
        _ = m.connected(0, now: Self.at(1))
        _ = m.answered(0, keepAlive: true, now: Self.at(2))
        let (request, actions) = m.answered(0, keepAlive: true, now: Self.at(3))
        #expect(request == nil)
        #expect(Self.steps(actions) == [.close(0)])
    }

    @Test func aBadAnswerFailsItsCallAndClosesTheConnection() {
        var m = Self.machine()
        _ = m.enqueue(["a"], now: Self.at(0))
        _ = m.connected(0, now: Self.at(1))
        #expect(Self.steps(m.failed(0, .bodyTooLarge)) == [.fail(["a"], .bodyTooLarge), .close(0)])
        #expect(Self.steps(m.closed(0, now: Self.at(2))).isEmpty, "its call already ended")
    }

    @Test func shutdownFailsEveryRequestClosesEveryConnectionAndRefusesLaterOnes() {
        var m = Self.machine(max: 1)
        _ = m.enqueue(["a", "b"], now: Self.at(0))
        _ = m.connected(0, now: Self.at(1))
        #expect(Self.steps(m.shutdown()) == [.fail(["b", "a"], .shutDown), .close(0)])
        #expect(Self.steps(m.shutdown()).isEmpty, "a second shutdown does nothing")
        #expect(Self.steps(m.enqueue(["c"], now: Self.at(2))) == [.fail(["c"], .shutDown)])
        #expect(Self.steps(m.closed(0, now: Self.at(3))).isEmpty)
        // A connection that opens after the shutdown closes at once.
        var opening = Self.machine(max: 1)
        _ = opening.enqueue(["a"], now: Self.at(0))
        _ = opening.shutdown()
        #expect(Self.steps(opening.connected(0, now: Self.at(1))) == [.close(0)])
    }

    /// Random events against the promises that matter: every request ends exactly once
    /// (answered or failed), never more connections than the limit, no request on two
    /// connections at once.
    @Test(arguments: 0..<20)
    func randomEventsKeepThePromises(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var m = Self.machine(max: 3, readMs: 500, requestMs: 2_000, idleMs: 1_000)
        var ended: [String: Int] = [:]
        var busy: [Int: String] = [:]
        var open: Set<Int> = []
        var opening: Set<Int> = []
        var sent = 0
        var now: Int64 = 0
        func apply(_ actions: [Machine.Action]) {
            for action in actions {
                switch action {
                case .connect(let id): opening.insert(id)
                case .start(let request, let id):
                    #expect(busy[id] == nil, "seed \(seed): \(request) on a busy connection \(id)")
                    #expect(!busy.values.contains(request), "seed \(seed): \(request) on two connections")
                    busy[id] = request
                case .fail(let requests, _):
                    for request in requests {
                        ended[request, default: 0] += 1
                        if let id = busy.first(where: { $0.value == request })?.key { busy[id] = nil }
                    }
                case .close: break
                }
            }
            #expect(open.count + opening.count <= 3, "seed \(seed): more connections than the limit")
        }
        for _ in 0..<400 {
            now += Int64(random.next() % 200)
            let at = Self.at(now)
            switch random.next() % 8 {
            case 0, 1:
                let count = Int(random.next() % 4) + 1
                apply(m.enqueue((0..<count).map { _ in sent += 1; return "r\(sent)" }, now: at))
            case 2:
                guard let id = opening.randomElement(using: &random) else { continue }
                opening.remove(id)
                open.insert(id)
                apply(m.connected(id, now: at))
            case 3:
                guard let id = opening.randomElement(using: &random) else { continue }
                opening.remove(id)
                apply(m.connectFailed(id, .connect("refused")))
            case 4:
                guard let id = open.randomElement(using: &random) else { continue }
                m.read(id, now: at)
                let (request, actions) = m.answered(id, keepAlive: random.next() % 4 != 0, now: at)
                if let request {
                    #expect(busy[id] == request, "seed \(seed): answer for \(request) on \(id)")
                    ended[request, default: 0] += 1
                    busy[id] = nil
                }
                apply(actions)
            case 5:
                guard let id = open.randomElement(using: &random) else { continue }
                open.remove(id)
                let lost = busy.removeValue(forKey: id)
                let actions = m.closed(id, now: at)
                apply(actions)
                if let lost, ended[lost] == nil, !busy.values.contains(lost) {
                    // Not failed: it must be waiting to go out again.
                    #expect(m.waitingCount > 0, "seed \(seed): \(lost) vanished with connection \(id)")
                }
            case 6:
                apply(m.sweep(now: at))
            default:
                guard let id = open.randomElement(using: &random) else { continue }
                apply(m.failed(id, .malformed("test")))
            }
        }
        apply(m.shutdown())
        for id in opening { apply(m.connected(id, now: Self.at(now))) }
        #expect(sent > 0)
        for n in stride(from: 1, through: sent, by: 1) {
            #expect(ended["r\(n)"] == 1, "seed \(seed): r\(n) ended \(ended["r\(n)"] ?? 0) times")
        }
    }
}
