import Foundation
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
