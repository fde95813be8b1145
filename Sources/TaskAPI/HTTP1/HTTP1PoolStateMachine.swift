import DequeModule
import NIOCore

/// The decisions of `HTTP1ConnectionPool`, without sockets: which request goes out on
/// which connection, when a connection opens or closes, which call fails and why.
/// Each event returns the actions to carry out, and the pool carries them out after
/// the state has changed, so a completion that starts a new call sees a consistent
/// pool. Time comes in as a parameter, so every rule is tested without a clock.
///
/// The rules:
/// - a waiting request goes to an idle connection (the most recently used first);
///   while requests wait and fewer than `maxConnections` are open or opening, more open;
/// - a connection that answered with keep-alive takes the next request; one that
///   did not, closes, and counts against the limit until it is closed;
/// - a request a reused connection lost before any answer byte (the race of a
///   request with the server's idle close) goes out again first, once;
/// - a connect failure fails the waiting requests only when no connection is open
///   or opening (nothing else could serve them);
/// - `sweep` ends what is past its time: a waiting request past its deadline, a call
///   past its deadline or silent past the read timeout (its connection closes), an
///   idle connection past the idle timeout;
/// - after `shutdown` every request fails as `.shutDown` and every connection closes.
struct HTTP1PoolStateMachine<Request> {
    typealias ConnectionID = Int
    typealias Failure = HTTP1ConnectionPool.Failure

    struct Timeouts {
        /// Silence while a call waits for its answer.
        var read: TimeAmount
        /// From enqueue to the end of the call.
        var request: TimeAmount
        /// An unused connection closes after this.
        var idle: TimeAmount
    }

    enum Action {
        /// Open a connection; report `connected` or `connectFailed` with this id.
        case connect(ConnectionID)
        /// Write the request on the connection.
        case start(Request, on: ConnectionID)
        /// Complete the requests with the failure.
        case fail([Request], Failure)
        /// Close the connection; report `closed` once it is.
        case close(ConnectionID)
    }

    private struct Waiting {
        var request: Request
        var deadline: NIODeadline
        var isRetry: Bool
    }

    private struct Connection {
        enum State {
            case idle
            case busy(Waiting, answering: Bool)
            /// Asked to close; still counted until `closed`.
            case closing
        }

        var state: State = .idle
        var lastActivity: NIODeadline
        /// Answers received on this connection so far.
        var answers = 0
    }

    let maxConnections: Int
    let timeouts: Timeouts
    private var waiting: Deque<Waiting> = []
    private var connections: [ConnectionID: Connection] = [:]
    /// Idle connections, the most recently used last.
    private var idle: [ConnectionID] = []
    private var opening: Set<ConnectionID> = []
    private var nextID: ConnectionID = 0
    private(set) var isShutDown = false

    init(maxConnections: Int, timeouts: Timeouts) {
        self.maxConnections = max(1, maxConnections)
        self.timeouts = timeouts
    }

    /// Connections open or opening, as the limit counts them.
    var connectionCount: Int { connections.count + opening.count }
    var waitingCount: Int { waiting.count }
    var busyCount: Int { connections.values.count { if case .busy = $0.state { true } else { false } } }

    // MARK: Events

    /// New requests, each due by `now` + the request timeout.
    mutating func enqueue(_ requests: [Request], now: NIODeadline) -> [Action] {
        guard !isShutDown else { return [.fail(requests, .shutDown)] }
        let deadline = now + timeouts.request
        for request in requests { waiting.append(Waiting(request: request, deadline: deadline, isRetry: false)) }
        return pump(now: now)
    }

    mutating func connected(_ id: ConnectionID, now: NIODeadline) -> [Action] {
        guard opening.remove(id) != nil else { return [.close(id)] }
        guard !isShutDown else {
            connections[id] = Connection(state: .closing, lastActivity: now)
            return [.close(id)]
        }
        connections[id] = Connection(lastActivity: now)
        idle.append(id)
        return pump(now: now)
    }

    mutating func connectFailed(_ id: ConnectionID, _ failure: Failure) -> [Action] {
        guard opening.remove(id) != nil, connectionCount == 0, !waiting.isEmpty else { return [] }
        let failed = waiting.map(\.request)
        waiting.removeAll()
        return [.fail(failed, failure)]
    }

    /// Bytes arrived on the connection.
    mutating func read(_ id: ConnectionID, now: NIODeadline) {
        guard var connection = connections[id] else { return }
        connection.lastActivity = now
        if case .busy(let call, _) = connection.state { connection.state = .busy(call, answering: true) }
        connections[id] = connection
    }

    /// A whole answer arrived: returns the request it answers (nil: nobody asked, and
    /// the connection closes), and what follows from it.
    mutating func answered(_ id: ConnectionID, keepAlive: Bool, now: NIODeadline) -> (Request?, [Action]) {
        guard var connection = connections[id] else { return (nil, []) }
        guard case .busy(let call, _) = connection.state else {
            if case .closing = connection.state { return (nil, []) }
            connection.state = .closing
            connections[id] = connection
            return (nil, [.close(id)])
        }
        connection.answers += 1
        connection.lastActivity = now
        if keepAlive && !isShutDown {
            connection.state = .idle
            connections[id] = connection
            idle.append(id)
            return (call.request, pump(now: now))
        }
        connection.state = .closing
        connections[id] = connection
        return (call.request, [.close(id)])
    }

    /// The answer on the connection could not be read: its call fails, it closes.
    mutating func failed(_ id: ConnectionID, _ failure: Failure) -> [Action] {
        guard var connection = connections[id] else { return [] }
        var actions: [Action] = []
        if case .busy(let call, _) = connection.state { actions.append(.fail([call.request], failure)) }
        if case .idle = connection.state { idle.removeAll { $0 == id } }
        if case .closing = connection.state {} else { actions.append(.close(id)) }
        connection.state = .closing
        connections[id] = connection
        return actions
    }

    /// The connection is closed (by either side). Its call, if any, goes out again or
    /// fails as `.closed`; a free place may open a new connection.
    mutating func closed(_ id: ConnectionID, now: NIODeadline) -> [Action] {
        guard let connection = connections.removeValue(forKey: id) else { return [] }
        var actions: [Action] = []
        switch connection.state {
        case .idle:
            idle.removeAll { $0 == id }
        case .busy(var call, let answering):
            if connection.answers > 0, !answering, !call.isRetry, !isShutDown {
                call.isRetry = true
                waiting.prepend(call)
            } else {
                actions.append(.fail([call.request], .closed))
            }
        case .closing:
            break
        }
        return actions + pump(now: now)
    }

    /// Ends what is past its time (run it often, e.g. every 50 ms).
    mutating func sweep(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        var late: [Request] = []
        while let first = waiting.first, first.deadline <= now {
            late.append(waiting.removeFirst().request)
        }
        if !late.isEmpty { actions.append(.fail(late, .deadlineExceeded)) }
        for (id, var connection) in connections {
            switch connection.state {
            case .busy(let call, _):
                let failure: Failure? = now >= call.deadline ? .deadlineExceeded
                    : now - connection.lastActivity > timeouts.read ? .readTimeout : nil
                guard let failure else { continue }
                actions.append(.fail([call.request], failure))
            case .idle:
                guard now - connection.lastActivity > timeouts.idle else { continue }
                idle.removeAll { $0 == id }
            case .closing:
                continue
            }
            connection.state = .closing
            connections[id] = connection
            actions.append(.close(id))
        }
        return actions
    }

    /// Every request fails as `.shutDown`, every connection closes; later requests fail at once.
    mutating func shutdown() -> [Action] {
        guard !isShutDown else { return [] }
        isShutDown = true
        var failed = waiting.map(\.request)
        waiting.removeAll()
        idle.removeAll()
        var closes: [Action] = []
        for (id, var connection) in connections {
            if case .busy(let call, _) = connection.state { failed.append(call.request) }
            if case .closing = connection.state { continue }
            connection.state = .closing
            connections[id] = connection
            closes.append(.close(id))
        }
        return (failed.isEmpty ? [] : [.fail(failed, .shutDown)]) + closes
    }

    // MARK: Rules

    /// Idle connections take waiting requests; more connections open while requests wait.
    private mutating func pump(now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        while !waiting.isEmpty, let id = idle.popLast() {
            let call = waiting.removeFirst()
            connections[id]?.state = .busy(call, answering: false)
            connections[id]?.lastActivity = now
            actions.append(.start(call.request, on: id))
        }
        guard !isShutDown else { return actions }
        let wanted = min(waiting.count, maxConnections - connectionCount)
        for _ in 0..<max(0, wanted) {
            let id = nextID
            nextID += 1
            opening.insert(id)
            actions.append(.connect(id))
        }
        return actions
    }
}
