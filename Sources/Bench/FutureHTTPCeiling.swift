import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Simulator
import TaskAPI

/// `--raw-http-future`: the ceiling of the *EventLoopFuture* path of async-http-client
/// (no Swift task, continuation or async body sequence per request; each loop issues
/// its next call from the completion callback on the event loop), with the same
/// client settings and the same classification as `TaskResultClient`. Evidence for
/// moving the pipeline's poll path off the async API.
enum FutureHTTPCeiling {
    static func measure(profile: ProviderProfile, configuration c: TaskResultClient.Configuration, simulator: SimulatorServer,
                        key: ClientKey, concurrency: Int, seconds: Double, warmup: Double = 1) async -> RawHTTPCeiling.Result {
        var http = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: TimeAmount(c.connectTimeout), read: TimeAmount(c.readTimeout)),
            connectionPool: .init(idleTimeout: TimeAmount(c.idleTimeout),
                                  concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, c.maxConnectionsPerHost)),
            decompression: .disabled)
        http.httpVersion = .automatic
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http)
        let ids = simulator.withCore { core, now in
            (0..<max(1, concurrency * 4)).map { _ in core.createTask(solveTime: 1e9, now: now) }
        }
        let warmEnd = NIODeadline.now() + .milliseconds(Int64(warmup * 1000))
        let end = warmEnd + .milliseconds(Int64(seconds * 1000))
        let counts = NIOLockedValueBox((0, 0))
        let cpuAtStart = NIOLockedValueBox(0.0)
        let url = profile.getTaskResultURL
        let userAgent = c.userAgent

        @Sendable func loop(_ i: Int, done: EventLoopPromise<Void>) {
            let started = NIODeadline.now()
            if started >= end { done.succeed(()); return }
            guard var request = try? HTTPClient.Request(url: url, method: .POST) else { done.succeed(()); return }
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: userAgent)
            request.body = .bytes(GetTaskResultRequest.body(taskId: ids[i % ids.count], clientKey: key))
            client.execute(request: request, deadline: .now() + TimeAmount(c.requestTimeout)).whenComplete { result in
                var processing = false
                if case .success(let response) = result {
                    let body = response.body.map { Array($0.readableBytesView) } ?? []
                    let outcome = OutcomeClassifier.classify(status: Int(response.status.code), headers: response.headers,
                                                             body: body, profile: profile)
                    if case .processing = outcome { processing = true }
                }
                if started >= warmEnd {
                    counts.withLockedValue { $0.0 += 1; if !processing { $0.1 += 1 } }
                }
                loop(i + concurrency, done: done)
            }
        }

        let group = HTTPClient.defaultEventLoopGroup
        var futures: [EventLoopFuture<Void>] = []
        for worker in 0..<concurrency {
            let promise = group.next().makePromise(of: Void.self)
            loop(worker, done: promise)
            futures.append(promise.futureResult)
        }
        let sampler = Task {
            try? await Task.sleep(for: .milliseconds(Int64(warmup * 1000)))
            cpuAtStart.withLockedValue { $0 = ProcessMetrics.cpuSeconds() }
        }
        for future in futures { try? await future.get() }
        await sampler.value
        let cpu = ProcessMetrics.cpuSeconds() - cpuAtStart.withLockedValue { $0 }
        try? await client.shutdown()
        let (n, unexpected) = counts.withLockedValue { $0 }
        return RawHTTPCeiling.Result(requestsPerSecond: Double(n) / seconds, requests: n, seconds: seconds,
                                     concurrency: concurrency, unexpectedAnswers: unexpected,
                                     cpuSecondsPerThousandRequests: n > 0 ? cpu / Double(n) * 1000 : 0)
    }
}
