import Foundation
import Logging
import Testing

/// Waits until `condition` holds, checking every 20 ms, or records an issue and
/// throws after `timeout` seconds. Tests wait on conditions, never on sleeps.
public func waitUntil(_ what: String, timeout: Double = 60, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while try await !condition() {
        if Date() > deadline {
            Issue.record("timed out waiting for: \(what)")
            throw TimedOut(what: what)
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

public struct TimedOut: Error {
    public let what: String
    public init(what: String) { self.what = what }
}

/// A value guarded by a lock, for collecting results from other threads.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    public var current: Value { withLock { $0 } }
}

/// A LogHandler that keeps every rendered line (level, label, source, message,
/// metadata) in memory, for tests that read what was logged.
public struct CapturingLogHandler: LogHandler {
    public final class Store: Sendable {
        private let lines = Locked<[String]>([])
        public init() {}
        public var all: [String] { lines.current }
        func append(_ line: String) { lines.withLock { $0.append(line) } }
    }

    public let store: Store
    public let label: String
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public init(store: Store, label: String) {
        self.store = store
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { _, new in new }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let error = event.error.map { " error=\($0)" } ?? ""
        store.append("\(event.level) \(label) [\(event.source)] \(event.message) \(rendered)\(error)")
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed),
/// for a child process that must be told its port up front.
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
