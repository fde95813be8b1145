import NIOHTTP1
import Testing
@testable import TaskAPI
@testable import TaskModel

/// Real-world getTaskResult bodies from each provider → the expected outcome.
@Suite("Decoding provider responses")
struct ResponseDecodingTests {
    enum Expect: Sendable, CustomStringConvertible {
        case processing
        case ready(String)                     // exact solution bytes
        case failed(FailureClass, String)      // class, code
        var description: String {
            switch self {
            case .processing: return "processing"
            case .ready(let s): return "ready(\(s))"
            case .failed(let c, let code): return "failed(\(c), \(code))"
            }
        }
    }

    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let profile: ProviderProfile
        let body: String
        let expect: Expect
        var description: String { name }
    }

    static let cases: [Case] = [
        // ez-captcha
        Case(name: "ez processing", profile: .ezCaptcha,
             body: #"{"errorId":0,"errorCode":null,"errorDescription":null,"status":"processing","taskId":"8f14e45f-ceea-467a-9575-6c8ae4e7e3f1"}"#,
             expect: .processing),
        Case(name: "ez ready recaptcha", profile: .ezCaptcha,
             body: #"{"errorId":0,"errorCode":"","errorDescription":"","status":"ready","solution":{"gRecaptchaResponse":"03AGdBq24PBCbwiDRaS_MJ7Z...","userAgent":"Mozilla/5.0"},"taskId":"8f14e45f-ceea-467a-9575-6c8ae4e7e3f1"}"#,
             expect: .ready(#"{"gRecaptchaResponse":"03AGdBq24PBCbwiDRaS_MJ7Z...","userAgent":"Mozilla/5.0"}"#)),
        Case(name: "ez error TASKID_INVALID", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_TASKID_INVALID","errorDescription":"Task ID does not exist or is invalid"}"#,
             expect: .failed(.unknownTask, "ERROR_TASKID_INVALID")),
        Case(name: "ez key does not exist", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_KEY_DOES_NOT_EXIST","errorDescription":"Account authorization key not found"}"#,
             expect: .failed(.account, "ERROR_KEY_DOES_NOT_EXIST")),
        Case(name: "ez key banned", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_KEY_BANNED","errorDescription":null}"#,
             expect: .failed(.account, "ERROR_KEY_BANNED")),
        Case(name: "ez zero balance", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_ZERO_BALANCE"}"#,
             expect: .failed(.account, "ERROR_ZERO_BALANCE")),
        Case(name: "ez ip banned", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_IP_BANNED","errorDescription":"blocked for 10 minutes"}"#,
             expect: .failed(.ban, "ERROR_IP_BANNED")),
        Case(name: "ez service unavaliable (sic)", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_SERVICE_UNAVALIABLE","errorDescription":"overloaded"}"#,
             expect: .failed(.transient(.providerBusy, retryAfter: nil), "ERROR_SERVICE_UNAVALIABLE")),
        Case(name: "ez internal server error", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_INTERNAL_SERVER_ERROR"}"#,
             expect: .failed(.transient(.providerBusy, retryAfter: nil), "ERROR_INTERNAL_SERVER_ERROR")),
        Case(name: "ez no slot", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_NO_SLOT_AVAILABLE"}"#,
             expect: .failed(.transient(.providerBusy, retryAfter: nil), "ERROR_NO_SLOT_AVAILABLE")),
        Case(name: "ez unsolvable", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_CAPTCHA_UNSOLVABLE","errorDescription":"Captcha could not be solved"}"#,
             expect: .failed(.task, "ERROR_CAPTCHA_UNSOLVABLE")),
        Case(name: "ez task not supported", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_TASK_NOT_SUPPORTED"}"#, expect: .failed(.task, "ERROR_TASK_NOT_SUPPORTED")),
        Case(name: "ez required fields", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_REQUIRED_FIELDS"}"#, expect: .failed(.task, "ERROR_REQUIRED_FIELDS")),
        Case(name: "ez invalid sitekey", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_RECAPTCHA_INVALID_SITEKEY"}"#,
             expect: .failed(.task, "ERROR_RECAPTCHA_INVALID_SITEKEY")),
        Case(name: "ez invalid siteurl", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"INVALID_RECAPTCHA_SITEURL"}"#, expect: .failed(.task, "INVALID_RECAPTCHA_SITEURL")),
        Case(name: "unknown code keeps its code, terminal for task", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_SOMETHING_NEW","errorDescription":"?"}"#,
             expect: .failed(.task, "ERROR_SOMETHING_NEW")),
        Case(name: "error id without code", profile: .ezCaptcha,
             body: #"{"errorId":7,"errorCode":null}"#, expect: .failed(.task, "ERROR_ID_7")),
        Case(name: "errorCode without errorId", profile: .ezCaptcha,
             body: #"{"errorCode":"ERROR_ZERO_BALANCE"}"#, expect: .failed(.account, "ERROR_ZERO_BALANCE")),
        // capsolver
        Case(name: "capsolver idle", profile: .capsolver,
             body: #"{"errorId":0,"taskId":"61138bb6-19fb-11ec-a9c8-0242ac110006","status":"idle"}"#,
             expect: .processing),
        Case(name: "capsolver ready turnstile", profile: .capsolver,
             body: #"{"errorId":0,"taskId":"61138bb6-19fb-11ec-a9c8-0242ac110006","status":"ready","solution":{"token":"0.zrSnRHO7h0HwSjSCU8oyzbjEtD8p","type":"turnstile","userAgent":"Mozilla/5.0"}}"#,
             expect: .ready(#"{"token":"0.zrSnRHO7h0HwSjSCU8oyzbjEtD8p","type":"turnstile","userAgent":"Mozilla/5.0"}"#)),
        Case(name: "capsolver key denied", profile: .capsolver,
             body: #"{"errorId":1,"errorCode":"ERROR_KEY_DENIED_ACCESS","errorDescription":"key denied"}"#,
             expect: .failed(.account, "ERROR_KEY_DENIED_ACCESS")),
        Case(name: "capsolver ERROR_KEY_DENIED_ACCESS is unknown → task on ez", profile: .ezCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_KEY_DENIED_ACCESS"}"#,
             expect: .failed(.task, "ERROR_KEY_DENIED_ACCESS")),
        // anti-captcha
        Case(name: "anti processing numeric id", profile: .antiCaptcha,
             body: #"{"errorId":0,"status":"processing","taskId":7654321987}"#, expect: .processing),
        Case(name: "anti ready with extras", profile: .antiCaptcha,
             body: #"{"errorId":0,"status":"ready","solution":{"gRecaptchaResponse":"3AHJ_VuvYIBNBW5yyv0zRYJ75VkOKvhKj9_xGBJKnQimF72rfoq3Iy-DyGHMwLAo6a3","cookies":{"a":"b"}},"cost":"0.001500","ip":"46.98.54.221","createTime":1472205564,"endTime":1472205570,"solveCount":0}"#,
             expect: .ready(#"{"gRecaptchaResponse":"3AHJ_VuvYIBNBW5yyv0zRYJ75VkOKvhKj9_xGBJKnQimF72rfoq3Iy-DyGHMwLAo6a3","cookies":{"a":"b"}}"#)),
        Case(name: "anti task absent", profile: .antiCaptcha,
             body: #"{"errorId":16,"errorCode":"ERROR_TASK_ABSENT","errorDescription":"Task is absent"}"#,
             expect: .failed(.unknownTask, "ERROR_TASK_ABSENT")),
        Case(name: "anti no such captcha id", profile: .antiCaptcha,
             body: #"{"errorId":16,"errorCode":"ERROR_NO_SUCH_CAPCHA_ID","errorDescription":"Task you are requesting does not exist"}"#,
             expect: .failed(.unknownTask, "ERROR_NO_SUCH_CAPCHA_ID")),
        Case(name: "anti key numeric errorId", profile: .antiCaptcha,
             body: #"{"errorId":1,"errorCode":"ERROR_KEY_DOES_NOT_EXIST","errorDescription":"Account authorization key not found in the system"}"#,
             expect: .failed(.account, "ERROR_KEY_DOES_NOT_EXIST")),
        Case(name: "anti zero balance errorId 10", profile: .antiCaptcha,
             body: #"{"errorId":10,"errorCode":"ERROR_ZERO_BALANCE","errorDescription":"Account has zero or negative balance"}"#,
             expect: .failed(.account, "ERROR_ZERO_BALANCE")),
        Case(name: "anti ip blocked", profile: .antiCaptcha,
             body: #"{"errorId":21,"errorCode":"ERROR_IP_BLOCKED","errorDescription":"blocked"}"#,
             expect: .failed(.ban, "ERROR_IP_BLOCKED")),
        Case(name: "anti unsolvable errorId 12", profile: .antiCaptcha,
             body: #"{"errorId":12,"errorCode":"ERROR_CAPTCHA_UNSOLVABLE","errorDescription":"Captcha could not be solved by 5 different workers"}"#,
             expect: .failed(.task, "ERROR_CAPTCHA_UNSOLVABLE")),
        // capmonster
        Case(name: "capmonster processing with string solveCount", profile: .capmonster,
             body: #"{"errorId":0,"errorCode":null,"errorDescription":null,"status":"processing","solveCount":"2","taskId":2147483649}"#,
             expect: .processing),
        Case(name: "capmonster too much requests", profile: .capmonster,
             body: #"{"errorId":1,"errorCode":"ERROR_TOO_MUCH_REQUESTS","errorDescription":"too many"}"#,
             expect: .failed(.transient(.taskRateLimited, retryAfter: .seconds(2)), "ERROR_TOO_MUCH_REQUESTS")),
        Case(name: "capmonster ready hcaptcha", profile: .capmonster,
             body: #"{"errorId":0,"status":"ready","solution":{"gRecaptchaResponse":"P0_eyJ0eXAiOiJKV1Qi","respKey":"E0_eyJ0","userAgent":"Mozilla/5.0"},"cost":"0.0008"}"#,
             expect: .ready(#"{"gRecaptchaResponse":"P0_eyJ0eXAiOiJKV1Qi","respKey":"E0_eyJ0","userAgent":"Mozilla/5.0"}"#)),
        // 2captcha v2
        Case(name: "2captcha processing", profile: .twoCaptcha,
             body: #"{"errorId":0,"status":"processing"}"#, expect: .processing),
        Case(name: "2captcha ready with cost and times", profile: .twoCaptcha,
             body: #"{"errorId":0,"status":"ready","solution":{"token":"0.6Cw9Nvx..."},"cost":"0.00145","ip":"1.2.3.4","createTime":1692863536,"endTime":1692863556,"solveCount":1}"#,
             expect: .ready(#"{"token":"0.6Cw9Nvx..."}"#)),
        Case(name: "2captcha wrong captcha id", profile: .twoCaptcha,
             body: #"{"errorId":16,"errorCode":"ERROR_WRONG_CAPTCHA_ID","errorDescription":"wrong id"}"#,
             expect: .failed(.unknownTask, "ERROR_WRONG_CAPTCHA_ID")),
        // shapes
        Case(name: "errorId as string", profile: .ezCaptcha,
             body: #"{"errorId":"0","status":"processing"}"#, expect: .processing),
        Case(name: "status missing, no error", profile: .ezCaptcha,
             body: #"{"errorId":0}"#, expect: .failed(.transient(.badBody, retryAfter: nil), "BAD_BODY")),
        Case(name: "ready without solution", profile: .ezCaptcha,
             body: #"{"errorId":0,"status":"ready","solution":null}"#, expect: .failed(.transient(.badBody, retryAfter: nil), "BAD_BODY")),
        Case(name: "unknown status", profile: .ezCaptcha,
             body: #"{"errorId":0,"status":"weird"}"#, expect: .failed(.transient(.badBody, retryAfter: nil), "BAD_BODY")),
        Case(name: "truncated body", profile: .ezCaptcha,
             body: #"{"errorId":0,"status":"ready","solution":{"token":"abc"#, expect: .failed(.transient(.badBody, retryAfter: nil), "BAD_BODY")),
        Case(name: "html body", profile: .ezCaptcha,
             body: "<html>502 Bad Gateway</html>", expect: .failed(.transient(.badBody, retryAfter: nil), "BAD_BODY")),
        Case(name: "empty body", profile: .ezCaptcha,
             body: "", expect: .failed(.transient(.badBody, retryAfter: nil), "BAD_BODY")),
        Case(name: "solution kept verbatim: numbers, unicode, escapes", profile: .ezCaptcha,
             body: "{\"status\":\"ready\",\"errorId\":0,\"solution\":{ \"n\" : 1.000000000000000000001, \"big\":123456789012345678901234567890,\"u\":\"\\u00e9 é 😀\", \"e\":\"\\\"}\" }}",
             expect: .ready("{ \"n\" : 1.000000000000000000001, \"big\":123456789012345678901234567890,\"u\":\"\\u00e9 é 😀\", \"e\":\"\\\"}\" }")),
    ]

    @Test(arguments: cases)
    func classifies(_ c: Case) {
        let outcome = OutcomeClassifier.classify(status: 200, headers: HTTPHeaders(), body: Array(c.body.utf8), profile: c.profile)
        switch (c.expect, outcome) {
        case (.processing, .processing):
            break
        case (.ready(let expected), .ready(let solution, _)):
            #expect(solution.bytes == Array(expected.utf8), "\(c.name)")
        case (.failed(let expectedClass, let expectedCode), .failed(let failureClass, let code, _, _)):
            #expect(failureClass == expectedClass, "\(c.name)")
            #expect(code == expectedCode, "\(c.name)")
        default:
            Issue.record("\(c.name): expected \(c.expect), got \(outcome)")
        }
    }

    /// cost, createTime, endTime and solveCount come along with a solution; malformed ones
    /// are left out and never fail the answer.
    @Test func theReceiptOfASolveIsReadWhenSentAndNeverFailsTheAnswer() throws {
        let anti = try TaskResultResponse.decode(Array(#"{"errorId":0,"status":"ready","solution":{"text":"x"},"cost":"0.001500","ip":"46.98.54.221","createTime":1472205564,"endTime":1472205570,"solveCount":0}"#.utf8))
        #expect(anti.receipt == SolveReceipt(cost: "0.001500", createTime: 1472205564, endTime: 1472205570, solveCount: 0))
        #expect(anti.receipt.providerSolveTime == .seconds(6))
        #expect(anti.receipt.costValue == 0.0015)
        let numeric = try TaskResultResponse.decode(Array(#"{"errorId":0,"status":"ready","solution":{},"cost":0.002,"solveCount":"1"}"#.utf8))
        #expect(numeric.receipt.cost == "0.002")
        #expect(numeric.receipt.solveCount == 1, "a count sent as a string of digits")
        let odd = try TaskResultResponse.decode(Array(#"{"errorId":0,"status":"ready","solution":{},"cost":"1e3; drop","createTime":"soon","endTime":-5,"solveCount":1.5}"#.utf8))
        #expect(odd.receipt.isEmpty, "\(odd.receipt)")
        let backwards = SolveReceipt(createTime: 1472205570, endTime: 1472205564)
        #expect(backwards.providerSolveTime == nil, "an end before its start is no solve time")
        let outcome = OutcomeClassifier.classify(status: 200, headers: HTTPHeaders(), body: Array(#"{"errorId":0,"status":"ready","solution":{"t":1},"cost":"0.1"}"#.utf8), profile: .antiCaptcha)
        guard case .ready(_, let receipt) = outcome else {
            Issue.record("expected ready, got \(outcome)")
            return
        }
        #expect(receipt.cost == "0.1")
    }

    @Test func decodesTaskIdsOfBothShapes() throws {
        let numeric = try TaskResultResponse.decode(Array(#"{"errorId":0,"status":"processing","taskId":98765432109876}"#.utf8))
        #expect(numeric.taskId == "98765432109876")
        let text = try TaskResultResponse.decode(Array(#"{"errorId":0,"status":"processing","taskId":"abc-1"}"#.utf8))
        #expect(text.taskId == "abc-1")
    }

    @Test func errorDescriptionIsKept() {
        let outcome = OutcomeClassifier.classify(
            status: 200, headers: HTTPHeaders(),
            body: Array(#"{"errorId":1,"errorCode":"ERROR_TASKID_INVALID","errorDescription":"Task ID \"x\" invalid"}"#.utf8),
            profile: .ezCaptcha)
        #expect(outcome == .failed(.unknownTask, code: "ERROR_TASKID_INVALID", description: "Task ID \"x\" invalid", errorId: 1))
    }
}
