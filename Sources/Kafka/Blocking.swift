import Foundation

/// Runs blocking librdkafka calls (commit, flush, committed) on their own threads,
/// never on Swift's cooperative pool.
enum Blocking {
    private static let queue = DispatchQueue(label: "ezpoll.kafka.blocking", attributes: .concurrent)

    static func run<T>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
