import TaskAPI
import Testing
@testable import Poller
@testable import PollerCore

/// Provider callbacks as hints (`PollingEngine.callbackReceived`): a callback only makes a
/// poll due, within the budget and the provider's per-task minimum; the poll decides.
@Suite struct CallbackHintTests {
    static func withCallbacks(_ tweak: (inout PollingEngine.Configuration) -> Void = { _ in }) -> PollingEngine.Configuration {
        config {
            $0.callbacks = CallbackSchedule()
            tweak(&$0)
        }
    }

    static let expecting = #"{"taskId":"a","callback":true}"#

    @Test func aTaskThatExpectsACallbackIsPolledOnTheSafetySchedule() {
        var h = EngineHarness(configuration: Self.withCallbacks())
        h.script["a"] = [.processing, .processing, solved]
        h.receive(Self.expecting)
        h.runToCompletion()
        #expect(h.solutions["a"]?.polls == 3)
        #expect(h.callTimes == [t(30), t(45), t(60)], "first at 30 s, then every 15 s: \(h.callTimes)")
    }

    @Test func withoutTheReceiverTheEventsFlagChangesNothing() {
        var h = EngineHarness(configuration: config())
        h.script["a"] = [.processing, solved]
        h.receive(Self.expecting)
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now) == .unknownProvider)
        h.runToCompletion()
        #expect(h.callTimes == [t(5), t(8)], "the profile's own schedule: \(h.callTimes)")
        #expect(h.engine.callbackIndexCount == 0)
    }

    @Test func aCallbackMakesThePollDueAtOnceAndOnePollSolvesTheTask() {
        var h = EngineHarness(configuration: Self.withCallbacks())
        h.script["a"] = [solved]
        h.receive(Self.expecting)
        h.now = t(12)
        #expect(h.engine.callbackReceived(provider: "EZ-CAPTCHA", taskId: "a", now: h.now) == .pollDue, "the provider's name in any case")
        h.apply(h.engine.tick(now: h.now))
        #expect(h.callTimes == [t(12)])
        h.runToCompletion()
        #expect(h.solutions["a"]?.polls == 1)
        #expect(h.engine.callbackIndexCount == 0, "a finished task leaves the index")
    }

    @Test func aLostCallbackStillEndsInASolutionWithinTheWindow() {
        var h = EngineHarness(configuration: Self.withCallbacks())
        h.script["a"] = Array(repeating: .processing, count: 10) + [solved]
        h.receive(Self.expecting)
        h.runToCompletion()
        #expect(h.solutions["a"]?.polls == 11)
        #expect(h.callTimes.last == t(180))
    }

    @Test func forgedAndDuplicatedCallbacksBuyAtMostTheirShareOfPolls() {
        var h = EngineHarness(configuration: Self.withCallbacks())
        h.script["a"] = [.processing, .processing, solved]
        h.receive(Self.expecting)
        h.now = t(10)
        // A forged "ready" before the solve: one poll, which says processing.
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now) == .pollDue)
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now) == .alreadyDue, "a copy before the poll")
        h.step() // the call
        h.step() // its answer
        #expect(h.callTimes == [t(10)])
        // Closer than the provider's 2 s minimum: the poll waits for it.
        h.now = t(11)
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now) == .pollDue)
        #expect(h.engine.nextWakeup(now: h.now) == t(12))
        h.now = t(12)
        h.step()
        h.step()
        #expect(h.callTimes == [t(10), t(12)])
        // Its share spent: a flood changes nothing.
        h.now = t(13)
        for _ in 0..<1_000 {
            #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now) == .overLimit)
        }
        h.runToCompletion()
        #expect(h.callTimes == [t(10), t(12), t(27)], "back on the safety schedule: \(h.callTimes)")
        #expect(h.outputs(for: "a") == 1)
        #expect(h.solutions["a"]?.polls == 3)
    }

    @Test func aCallbackDuringACallPollsAgainAtOnceIfTheCallSaidProcessing() {
        var h = EngineHarness(configuration: Self.withCallbacks())
        h.script["a"] = [.processing, solved]
        h.receive(Self.expecting)
        h.now = t(30)
        h.apply(h.engine.tick(now: h.now))
        #expect(h.pendingCalls.count == 1)
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now) == .afterCall)
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now) == .afterCall, "one re-poll, however many copies")
        h.now = t(31)
        h.step() // answers processing: the next poll comes at the 2 s minimum, not 15 s later
        #expect(h.engine.nextWakeup(now: h.now) == t(32))
        h.runToCompletion()
        #expect(h.callTimes == [t(30), t(32)])
        #expect(h.solutions["a"]?.polls == 2)
    }

    @Test func callbacksForUnknownFinishedAndForeignTasksAreDropped() {
        var h = EngineHarness(configuration: Self.withCallbacks())
        h.script["a"] = [solved]
        h.receive(Self.expecting)
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "nope", now: h.now) == .early)
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "nope", now: h.now) == .unknownTask, "remembered once")
        #expect(h.engine.callbackReceived(provider: "other-provider", taskId: "a", now: h.now) == .unknownProvider)
        _ = h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now)
        h.apply(h.engine.tick(now: h.now))
        h.apply(h.engine.callCompleted(h.pendingCalls[0].0, clientKey: h.pendingCalls[0].2, outcome: solved, now: h.now))
        h.pendingCalls = []
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now) == .finished, "publishing")
        h.runToCompletion()
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now) == .early, "done: remembered, harmlessly")
        #expect(h.outputs(for: "a") == 1)
    }

    @Test func aRevokedPartitionsTasksTakeNoCallbacks() {
        var h = EngineHarness(configuration: Self.withCallbacks())
        h.script["a"] = [.processing]
        h.receive(Self.expecting)
        h.script["b"] = [.processing]
        h.receive(#"{"taskId":"b","callback":true}"#)
        h.now = t(30)
        h.apply(h.engine.tick(now: h.now)) // b's poll is out, a's too
        h.apply(h.engine.revoking([h.partition]))
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "b", now: h.now) == .unknownTask, "its call may finish; nothing more")
        _ = h.engine.revoked([h.partition])
        #expect(h.engine.callbackIndexCount == 0)
        #expect(h.callTimes.count == 2)
    }

    @Test func aCallbackBeforeItsEventMakesTheFirstPollImmediate() {
        var h = EngineHarness(configuration: Self.withCallbacks())
        h.script["a"] = [solved]
        #expect(h.engine.callbackReceived(provider: "ez-captcha", taskId: "a", now: h.now) == .early)
        h.now = t(3)
        h.receive(Self.expecting)
        h.step()
        #expect(h.callTimes == [t(3)], "not at the safety schedule's 30 s")
        h.runToCompletion()
        #expect(h.solutions["a"]?.polls == 1)
        #expect(h.engine.earlyCallbackCount == 0)
    }

    @Test func earlyCallbacksAreBoundedAndForgetTheOldest() {
        var h = EngineHarness(configuration: Self.withCallbacks { $0.callbacks?.maxEarlyCallbacks = 100 })
        for i in 0..<1_000 { _ = h.engine.callbackReceived(provider: "ez-captcha", taskId: "junk\(i)", now: h.now) }
        #expect(h.engine.earlyCallbackCount == 100)
        h.receive(#"{"taskId":"junk0","callback":true}"#)
        h.receive(#"{"taskId":"junk999","callback":true}"#)
        h.step()
        #expect(h.callTimes.count == 1, "only the newest was still remembered")
        // Past the longest window a remembered callback is forgotten.
        _ = h.engine.callbackReceived(provider: "ez-captcha", taskId: "late", now: h.now)
        h.now = t(400)
        h.receive(#"{"taskId":"late","callback":true}"#)
        h.step()
        #expect(h.callTimes.count == 1)
    }

    @Test func aFloodOfCallbacksStaysWithinTheCallBudgetAndStarvesNoScheduledPoll() {
        var h = EngineHarness(configuration: Self.withCallbacks { $0.rateLimit = 5 })
        // A task near its deadline on the normal schedule (a poll every 3 s)...
        h.receive(#"{"taskId":"old"}"#, createdAt: t(-200))
        // ...and 100 whose callbacks come again and again, far more than 5 calls a second.
        for i in 0..<100 { h.receive(#"{"taskId":"t\#(i)","callback":true}"#) }
        for second in 1...20 {
            h.now = t(Double(second))
            for i in 0..<100 { _ = h.engine.callbackReceived(provider: "ez-captcha", taskId: "t\(i)", now: h.now) }
            h.step()
        }
        // The bucket starts full (5) and refills 5 a second.
        #expect(h.callTimes.count <= 5 + 5 * 20, "\(h.callTimes.count) calls in 20 s at 5/s")
        #expect(h.callTimes.count >= 5 * 20, "the budget was used")
        // Due polls go by deadline: the old task keeps its 3 s schedule (at 1, 4, 7 ... 19 s).
        #expect(h.callsPerTask["old"] == 7, "\(h.callsPerTask["old"] ?? 0) polls of the task nearest its deadline")
    }

    @Test func twoProvidersMayUseTheSameTaskId() {
        let policy = config().policy
        var h = EngineHarness(configuration: Self.withCallbacks {
            $0.providers = [ProviderRoute(name: "ez-captcha", policy: policy), ProviderRoute(name: "capsolver", policy: policy)]
        })
        h.script["a"] = [solved]
        h.receive(#"{"taskId":"a","callback":true}"#)
        h.receive(#"{"taskId":"a","callback":true,"provider":"capsolver"}"#)
        #expect(h.engine.callbackReceived(provider: "capsolver", taskId: "a", now: h.now) == .pollDue)
        h.apply(h.engine.tick(now: h.now))
        let providers = h.log.compactMap { action -> String? in
            if case .call(_, _, _, let provider) = action { return provider }
            return nil
        }
        #expect(providers == ["capsolver"])
    }

    @Test func theSafetySchedulesDefaultsAreDocumented() {
        let policy = PollingPolicy(profile: .ezCaptcha).expectingCallback(CallbackSchedule())
        #expect(policy.initialDelay == .seconds(30) && policy.interval == .seconds(15))
        #expect(PollingPolicy(profile: .ezCaptcha).window == policy.window, "the window is the provider's")
    }
}

@Suite struct ProviderCallbackTests {
    func parse(_ uri: String, _ body: String = "", method: String = "POST", token: String? = nil) -> Result<ProviderCallback, ProviderCallback.Rejection> {
        ProviderCallback.parse(method: method, uri: uri, body: Array(body.utf8), token: token)
    }

    @Test func eachProvidersShape() {
        #expect(parse("/callbacks/anti-captcha", #"{"taskId":7654321012,"errorId":0,"status":"ready","solution":{"gRecaptchaResponse":"x"}}"#)
            == .success(ProviderCallback(provider: "anti-captcha", taskId: "7654321012")))
        #expect(parse("/callbacks/capsolver", #"{"errorId":0,"taskId":"61138bb6-19fb-11ec-a9c8-0242ac110006","status":"ready"}"#)
            == .success(ProviderCallback(provider: "capsolver", taskId: "61138bb6-19fb-11ec-a9c8-0242ac110006")))
        #expect(parse("/callbacks/2captcha", "id=2122988149&code=03AGdBq24PBCbwiDRaS_MJ7Z")
            == .success(ProviderCallback(provider: "2captcha", taskId: "2122988149")))
        #expect(parse("/callbacks/2captcha?id=2122988149&code=x", method: "GET")
            == .success(ProviderCallback(provider: "2captcha", taskId: "2122988149")))
        #expect(parse("/callbacks/x", #"{"taskId":1e3}"#) == .success(ProviderCallback(provider: "x", taskId: "1000")), "numbers as the decoder reads them")
        #expect(parse("/callbacks/x", "taskId=a%20b+c") == .success(ProviderCallback(provider: "x", taskId: "a b c")))
    }

    @Test func malformedBodiesAndPathsAreRejected() {
        #expect(parse("/callbacks/x", #"{"status":"ready"}"#) == .failure(.malformed))
        #expect(parse("/callbacks/x", #"{"taskId":"#) == .failure(.malformed))
        #expect(parse("/callbacks/x", #"{"taskId":-1}"#) == .failure(.malformed))
        #expect(parse("/callbacks/x", #"{"taskId":"   "}"#) == .failure(.malformed))
        #expect(parse("/callbacks/x", "id=%zz") == .failure(.malformed))
        #expect(parse("/callbacks/x", String(repeating: "[", count: 100_000)) == .failure(.malformed))
        #expect(parse("/callbacks/x", #"{"taskId":"\#(String(repeating: "a", count: 2_000))"}"#) == .failure(.malformed))
        #expect(parse("/other", "id=1") == .failure(.notFound))
        #expect(parse("/callbacks/", "id=1") == .failure(.notFound))
        #expect(parse("/callbacks/x/extra", "id=1") == .failure(.notFound), "a token where none is configured")
        #expect(parse("/callbacks/x", "id=1", method: "PUT") == .failure(.methodNotAllowed))
    }

    @Test func theTokenIsRequiredWhenConfigured() {
        let token = "s3cret-token-0123456789"
        #expect(parse("/callbacks/x/\(token)", "id=1", token: token) == .success(ProviderCallback(provider: "x", taskId: "1")))
        #expect(parse("/callbacks/x", "id=1", token: token) == .failure(.forbidden))
        #expect(parse("/callbacks/x/\(token)x", "id=1", token: token) == .failure(.forbidden))
        #expect(parse("/callbacks/x/\(token.dropLast())", "id=1", token: token) == .failure(.forbidden))
        #expect(parse("/callbacks/x/wrong", "id=1", method: "PUT", token: token) == .failure(.forbidden), "a forger learns nothing more")
    }

    @Test func theEventsCallbackField() throws {
        let decoder = TaskEventDecoder()
        #expect(try decoder.decode(Array(#"{"taskId":"a","callback":true}"#.utf8)).get().expectsCallback)
        #expect(try !decoder.decode(Array(#"{"taskId":"a","callback":null}"#.utf8)).get().expectsCallback)
        #expect(try !decoder.decode(Array(#"{"taskId":"a"}"#.utf8)).get().expectsCallback)
        guard case .failure(let reason) = decoder.decode(Array(#"{"taskId":"a","callback":"yes"}"#.utf8)) else {
            Issue.record("a string is not a boolean")
            return
        }
        #expect(reason.code == .invalidField)
    }
}
