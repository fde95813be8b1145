import Foundation
import NIOHTTP1
import Testing
@testable import TaskAPI
@testable import TaskModel

@Suite("Classifying HTTP exchanges")
struct OutcomeClassifierTests {
    private func classify(_ status: Int, _ headers: [(String, String)] = [], _ body: String = "") -> TaskOutcome {
        OutcomeClassifier.classify(status: status, headers: HTTPHeaders(headers), body: Array(body.utf8),
                                   profile: .ezCaptcha, now: Date(timeIntervalSince1970: 1_700_000_000))
    }

    @Test func providerErrorsKeepTheirErrorId() {
        #expect(classify(200, [], #"{"errorId":12,"errorCode":"ERROR_CAPTCHA_UNSOLVABLE","errorDescription":"no"}"#)
            == .failed(.task, code: "ERROR_CAPTCHA_UNSOLVABLE", description: "no", errorId: 12))
        #expect(classify(200, [], #"{"errorId":"1","errorCode":"ERROR_KEY_DOES_NOT_EXIST"}"#)
            == .failed(.account, code: "ERROR_KEY_DOES_NOT_EXIST", description: nil, errorId: 1))
        #expect(classify(200, [], #"{"errorId":16}"#) == .failed(.task, code: "ERROR_ID_16", description: nil, errorId: 16))
    }

    @Test func http429HonoursRetryAfterSeconds() {
        #expect(classify(429, [("Retry-After", "7")], "slow down")
            == .failed(.transient(.httpStatus(429), retryAfter: .seconds(7)), code: "HTTP_429", description: nil))
    }

    @Test func http429WithoutRetryAfter() {
        #expect(classify(429) == .failed(.transient(.httpStatus(429), retryAfter: nil), code: "HTTP_429", description: nil))
    }

    @Test func retryAfterAsHTTPDate() {
        // 1_700_000_000 = Tue, 14 Nov 2023 22:13:20 GMT
        let outcome = classify(503, [("Retry-After", "Tue, 14 Nov 2023 22:13:50 GMT")])
        #expect(outcome == .failed(.transient(.httpStatus(503), retryAfter: .seconds(30)), code: "HTTP_503", description: nil))
    }

    @Test func retryAfterIsClampedAndGarbageIgnored() {
        #expect(OutcomeClassifier.parseRetryAfter("999999", now: Date()) == OutcomeClassifier.maxRetryAfter)
        #expect(OutcomeClassifier.parseRetryAfter("-5", now: Date()) == .zero)
        #expect(OutcomeClassifier.parseRetryAfter("soon", now: Date()) == nil)
        #expect(OutcomeClassifier.parseRetryAfter(" 1.5 ", now: Date()) == .milliseconds(1500))
    }

    @Test(arguments: [500, 502, 503, 504, 520])
    func serverErrorsAreTransient(_ status: Int) {
        #expect(classify(status, [], "<html>oops</html>")
            == .failed(.transient(.httpStatus(status), retryAfter: nil), code: "HTTP_\(status)", description: nil))
    }

    @Test func serverErrorWithJSONBodyIsStillTransient() {
        let outcome = classify(500, [], #"{"errorId":1,"errorCode":"ERROR_KEY_DOES_NOT_EXIST"}"#)
        #expect(outcome == .failed(.transient(.httpStatus(500), retryAfter: nil), code: "HTTP_500", description: nil))
    }

    @Test func clientErrorWithProviderErrorBodyUsesTheBody() {
        let outcome = classify(400, [], #"{"errorId":1,"errorCode":"ERROR_KEY_DOES_NOT_EXIST"}"#)
        #expect(outcome == .failed(.account, code: "ERROR_KEY_DOES_NOT_EXIST", description: nil, errorId: 1))
    }

    @Test func clientErrorWithoutBodyIsTransientHTTP() {
        #expect(classify(404, [], "not found") == .failed(.transient(.httpStatus(404), retryAfter: nil), code: "HTTP_404", description: nil))
    }

    @Test func okWithRetryAfterOnBusyCode() {
        let outcome = classify(200, [("Retry-After", "3")], #"{"errorId":1,"errorCode":"ERROR_NO_SLOT_AVAILABLE"}"#)
        #expect(outcome == .failed(.transient(.providerBusy, retryAfter: .seconds(3)), code: "ERROR_NO_SLOT_AVAILABLE", description: nil, errorId: 1))
    }

    @Test func stableNames() {
        #expect(FailureClass.task.name == "task")
        #expect(FailureClass.account.name == "account")
        #expect(FailureClass.ban.name == "ban")
        #expect(FailureClass.transient(.httpStatus(503), retryAfter: nil).name == "transient")
        #expect(TransientReason.httpStatus(429).name == "http_429")
        #expect(TransientReason.taskRateLimited.name == "task_rate_limited")
    }

    @Test func terminalityHelpers() {
        #expect(!TaskOutcome.processing.isTerminalForTask)
        #expect(TaskOutcome.failed(.task, code: "X", description: nil).isTerminalForTask)
        #expect(!TaskOutcome.failed(.transient(.timeout, retryAfter: nil), code: "TIMEOUT", description: nil).isTerminalForTask)
        #expect(TaskOutcome.failed(.ban, code: "ERROR_IP_BANNED", description: nil).failureCode == "ERROR_IP_BANNED")
    }
}

@Suite("Provider profiles and keys")
struct ProfileAndKeyTests {
    @Test func lookupByName() throws {
        #expect(ProviderProfile.named("ez-captcha") == .ezCaptcha)
        #expect(ProviderProfile.named("EzCaptcha") == .ezCaptcha)
        #expect(ProviderProfile.named("anti_captcha") == .antiCaptcha)
        #expect(ProviderProfile.named("capmonster") == .capmonster)
        #expect(ProviderProfile.named("capsolver") == .capsolver)
        #expect(ProviderProfile.named("2captcha") == .twoCaptcha)
        #expect(ProviderProfile.named("twocaptcha") == .twoCaptcha)
        #expect(ProviderProfile.named("nope") == nil)
        #expect(throws: TaskAPIError.self) { try ProviderProfile.lookup("nope") }
    }

    @Test func defaultsMatchTheDocs() {
        let ez = ProviderProfile.ezCaptcha
        #expect(ez.baseURL == "https://api.ez-captcha.com")
        #expect(ez.defaultPollInterval == .seconds(3))
        #expect(ez.resultWindow == .seconds(300))
        #expect(ez.getTaskResultURL == "https://api.ez-captcha.com/getTaskResult")
        #expect(ez.with(baseURL: "http://127.0.0.1:1/").getTaskResultURL == "http://127.0.0.1:1/getTaskResult")
        #expect(ProviderProfile.capmonster.minPollInterval == .seconds(2))
        for profile in ProviderProfile.builtins {
            #expect(profile.baseURL.hasPrefix("https://"), "\(profile.name)")
            #expect(profile.minPollInterval <= profile.defaultPollInterval)
        }
    }

    @Test func profileCodesOverrideCommonOnes() {
        var custom = ProviderProfile.ezCaptcha
        custom.extraErrorCodes["ERROR_ZERO_BALANCE"] = .task
        #expect(custom.classify(errorCode: "ERROR_ZERO_BALANCE") == .task)
        #expect(ProviderProfile.ezCaptcha.classify(errorCode: "ERROR_ZERO_BALANCE") == .account)
        #expect(ProviderProfile.ezCaptcha.classify(errorCode: "NEVER_SEEN") == .task)
    }

    @Test func clientKeyNeverShowsItsSecret() {
        let secret = "sk-DISTINCTIVE-0123456789abcdef"
        let key = ClientKey(secret)
        #expect(key.fingerprint.count == 8)
        #expect(key.fingerprint.allSatisfy { $0.isHexDigit })
        #expect(key.fingerprint == ClientKey.fingerprint(of: secret))
        #expect("\(key)" == "ClientKey(fp:\(key.fingerprint))")
        var dumped = ""
        dump(key, to: &dumped)
        for text in [String(describing: key), String(reflecting: key), "\(key)", dumped, "\([key])", "\(Optional(key) as Any)"] {
            #expect(!text.contains(secret), "leaked in: \(text)")
        }
        // SHA-256("abc") = ba7816bf...
        #expect(ClientKey.fingerprint(of: "abc") == "ba7816bf")
    }

    @Test func requestBodyEscapesAndCarriesTheKey() throws {
        let body = GetTaskResultRequest.body(taskId: "id\"1", clientKey: ClientKey("k\\ey"))
        let members = try JSONScanner.members(ofObject: body)
        #expect(try JSONScanner.decodeString(body, members[0].range) == "k\\ey")
        #expect(try JSONScanner.decodeString(body, members[1].range) == "id\"1")
    }
}
