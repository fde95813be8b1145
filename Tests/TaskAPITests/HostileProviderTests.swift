import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import TestSupport
import Simulator
import Testing
@testable import TaskAPI

/// Both transports against a provider that misbehaves on purpose (`HostileProvider`):
/// every misbehaviour ends its call as a transient failure by the call deadline at the
/// latest, the next poll of the same task is answered normally, memory stays bounded
/// while the peer floods, and no call is left in progress.
@Suite("A hostile provider", .serialized)
struct HostileProviderTests {
    typealias Mode = HostileProvider.Misbehaviour

    /// The reason each misbehaviour must end with: both transports agree, except that
    /// async-http-client reads a 1xx flood (it drops 1xx heads) to the call deadline and
    /// the capped chunk-extension flood (it skips extensions) to its read timeout, memory
    /// bounded, where ours refuses both at once.
    static func expectedReason(_ mode: Mode, _ transport: TaskResultClient.Configuration.Transport) -> TransientReason {
        switch mode {
        case .informationalFlood, .chunkExtensionFlood: return transport == .nio ? .badBody : .timeout
        case .trailerFlood, .headerFlood, .bareLF, .absurdChunkSize, .oversizedHead, .hugeBody: return .badBody
        case .slowBody, .hang: return .timeout
        case .resetMidBody: return .connection
        }
    }

    @Test(arguments: TaskResultClient.Configuration.Transport.allCases)
    func everyMisbehaviourEndsInATransientFailureAndBoundedMemory(transport: TaskResultClient.Configuration.Transport) async throws {
        // A byte every 300 ms never trips the 1 s read timeout: only the call deadline ends it.
        let provider = try await HostileProvider.start(slowByteInterval: .milliseconds(300))
        var configuration = TaskResultClient.Configuration(transport: transport)
        configuration.readTimeout = .seconds(1)
        configuration.requestTimeout = .seconds(4)
        configuration.maxBodyBytes = 64 << 10
        configuration.maxConnectionsPerHost = Mode.allCases.count
        let client = try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: provider.baseURL),
                                          configuration: configuration)
        let key = ClientKey("hostile-test-key-0123456789")
        let resetPeak = ProcessMemory.resetPeak()
        let before = ProcessMemory.kib("VmRSS")

        // All misbehaviours at once, as a provider would send them to a busy poller.
        let first = await withTaskGroup(of: (Mode, TaskOutcome).self) { group in
            for mode in Mode.allCases {
                group.addTask { (mode, await client.getTaskResult(taskId: "\(mode.rawValue).once.1", clientKey: key)) }
            }
            var outcomes: [Mode: TaskOutcome] = [:]
            for await (mode, outcome) in group { outcomes[mode] = outcome }
            return outcomes
        }
        let peakGrowthMiB = resetPeak && before != nil ? Double(ProcessMemory.kib("VmHWM")! - before!) / 1024 : nil

        for mode in Mode.allCases {
            let outcome = first[mode]
            guard case .failed(.transient(let reason, _), _, let description, _) = outcome else {
                Issue.record("\(mode.rawValue) over \(transport.rawValue): expected a transient failure, got \(String(describing: outcome))")
                continue
            }
            print("hostile provider over \(transport.rawValue): \(mode.rawValue) → transient \(reason): \(description ?? "")")
            #expect(!(description ?? "").contains(key.secret), "\(mode.rawValue): the key in a description")
            #expect(reason == Self.expectedReason(mode, transport), "\(mode.rawValue) over \(transport.rawValue): \(description ?? "")")
        }
        // The next poll of each task is a normal answer (on a fresh connection).
        for mode in Mode.allCases {
            let taskId = "\(mode.rawValue).once.1"
            let second = await client.getTaskResult(taskId: taskId, clientKey: key)
            guard case .ready(let solution, _) = second else {
                Issue.record("\(mode.rawValue) over \(transport.rawValue): second poll \(second)")
                continue
            }
            #expect(String(decoding: solution.bytes, as: UTF8.self).contains(HostileProvider.solution(of: taskId)))
        }
        #expect(client.callsInProgress == 0, "every call ended")
        await client.shutdown()
        try await provider.stop()

        print("hostile provider over \(transport.rawValue): peak RSS growth \(peakGrowthMiB.map { String(format: "%.1f", $0) } ?? "?") MiB, "
              + "\(provider.bytesSent >> 20) MiB offered, \(provider.requests) requests")
        if let peakGrowthMiB {
            // The floods offer up to 128 MiB each; what a call may buffer is its head and
            // body limits, once per connection, beside a few MiB the test itself allocates.
            let bound = 8 + Double(Mode.allCases.count * (HTTP1ResponseParser.defaultMaxHeadBytes + configuration.maxBodyBytes)) / 1_048_576
            #expect(peakGrowthMiB <= bound, "peak RSS grew by \(peakGrowthMiB) MiB (bound \(bound)) while \(provider.bytesSent >> 20) MiB were offered")
        } else {
            Issue.record("could not reset or read the peak RSS (/proc/self/clear_refs, VmHWM)")
        }
    }

    @Test func aCallPastItsDeadlineEndsEvenIfTheTransportNeverAnswers() async throws {
        // The guard above the transports, alone: a completion that nothing calls.
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let deadlines = CallDeadlines(timeout: .milliseconds(100), tick: .milliseconds(20), on: loop)
        let outcomes = NIOLockedValueBox<[TaskOutcome]>([])
        let cancelled = NIOLockedValueBox(0)
        let tickets = deadlines.register([{ outcome in outcomes.withLockedValue { $0.append(outcome) } },
                                          { outcome in outcomes.withLockedValue { $0.append(outcome) } }])
        deadlines.onExpiry(tickets[0]) { cancelled.withLockedValue { $0 += 1 } }
        deadlines.complete(tickets[1], .processing)
        try await waitUntil("the deadline ends the first call", timeout: 30) {
            outcomes.withLockedValue { $0.count } == 2
        }
        deadlines.complete(tickets[0], .processing) // a late answer: dropped
        let seen = outcomes.withLockedValue { $0 }
        #expect(seen.first == .processing)
        guard case .failed(.transient(.timeout, _), _, _, _) = seen.last else {
            Issue.record("expected a timeout, got \(String(describing: seen.last))")
            return
        }
        #expect(cancelled.withLockedValue { $0 } == 1, "the transport's work was cancelled")
        #expect(deadlines.inProgress == 0)
        deadlines.shutdown()
    }
}

/// This process's memory from `/proc/self/status`.
enum ProcessMemory {
    static func kib(_ field: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    /// Resets VmHWM to the current RSS (Linux: 5 to clear_refs). False if refused.
    static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }
}
