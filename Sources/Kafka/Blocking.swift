import Foundation

/// Runs blocking work (librdkafka's commit, flush and committed calls, the pipeline's
/// drain wait) on a thread of its own per call, never on Swift's cooperative pool and
/// never on a pool of a fixed width, where a long wait (a drain waits up to the drain
/// timeout) could hold up a commit.
public enum Blocking {
    public static func run<T>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
