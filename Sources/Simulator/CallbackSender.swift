import AsyncHTTPClient
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Sends the simulator's provider callbacks (`CallbackDelivery`) when they are due, as
/// POSTs with a JSON body, through one async-http-client client made on first use.
/// Each ends as delivered (2xx) or failed (anything else, refused, timed out), reported
/// to `onResult`; none is retried, as with providers that send a callback once.
final class CallbackSender: Sendable {
    private struct State {
        var client: HTTPClient?
        var stopped = false
    }

    private let group: EventLoopGroup
    private let state = NIOLockedValueBox(State())
    private let onResult: @Sendable (_ delivered: Bool) -> Void
    /// Longest one callback POST may take.
    static let timeout = TimeAmount.seconds(5)

    init(group: EventLoopGroup, onResult: @escaping @Sendable (_ delivered: Bool) -> Void) {
        self.group = group
        self.onResult = onResult
    }

    /// Schedules each delivery at its API time: `(at - now) / scale` real seconds from now.
    func send(_ deliveries: [CallbackDelivery], now: Double, scale: Double) {
        for delivery in deliveries {
            let wait = max(0, (delivery.at - now) / scale)
            group.next().scheduleTask(in: .nanoseconds(Int64(wait * 1e9))) { [self] in post(delivery) }
        }
    }

    private func post(_ delivery: CallbackDelivery) {
        let client = state.withLockedValue { state -> HTTPClient? in
            guard !state.stopped else { return nil }
            if state.client == nil { state.client = HTTPClient(eventLoopGroupProvider: .shared(group)) }
            return state.client
        }
        guard let client else { return }
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: delivery.url, method: .POST, headers: ["Content-Type": "application/json"],
                                             body: .bytes(delivery.body))
        } catch {
            onResult(false)
            return
        }
        client.execute(request: request, deadline: .now() + Self.timeout).whenComplete { [onResult] result in
            if case .success(let response) = result, (200..<300).contains(response.status.code) { onResult(true) } else { onResult(false) }
        }
    }

    /// Sends nothing more and closes the client.
    func shutdown() async {
        let client = state.withLockedValue { state -> HTTPClient? in
            state.stopped = true
            defer { state.client = nil }
            return state.client
        }
        try? await client?.shutdown()
    }
}
