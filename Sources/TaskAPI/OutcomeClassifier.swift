import Foundation
import NIOHTTP1

/// Turns one HTTP exchange into a `TaskOutcome`. Pure: no I/O, no clock
/// (except the `now` you pass for HTTP-date `Retry-After` values), so the whole
/// decision table is unit-tested with literal bytes.
public enum OutcomeClassifier {
    /// Longest `Retry-After` honoured; longer hints are clamped.
    public static let maxRetryAfter: Duration = .seconds(3600)

    /// Classifies a completed HTTP response.
    public static func classify(
        status: Int,
        headers: HTTPHeaders,
        body: [UInt8],
        profile: ProviderProfile,
        now: Date = Date()
    ) -> TaskOutcome {
        classify(status: status, retryAfter: headers.first(name: "Retry-After"), body: body, profile: profile, now: now)
    }

    /// Classifies a completed HTTP response given its `Retry-After` header's value.
    public static func classify(
        status: Int,
        retryAfter retryAfterValue: String?,
        body: [UInt8],
        profile: ProviderProfile,
        now: @autoclosure () -> Date = Date()
    ) -> TaskOutcome {
        let retryAfter = retryAfterValue.flatMap { parseRetryAfter($0, now: now()) }
        guard (200..<300).contains(status) else {
            // Some providers answer errors with a 4xx and a proper JSON error body.
            if (400..<500).contains(status), status != 429, status != 408,
               let response = try? TaskResultResponse.decode(body), response.isError {
                return classify(response, profile: profile, retryAfter: retryAfter)
            }
            return .failed(.transient(.httpStatus(status), retryAfter: retryAfter),
                           code: TaskOutcome.LocalCode.http(status), description: nil)
        }
        let response: TaskResultResponse
        do {
            response = try TaskResultResponse.decode(body)
        } catch {
            return .failed(.transient(.badBody, retryAfter: retryAfter),
                           code: TaskOutcome.LocalCode.badBody, description: String(describing: error))
        }
        return classify(response, profile: profile, retryAfter: retryAfter)
    }

    /// Classifies an already decoded body.
    public static func classify(
        _ response: TaskResultResponse,
        profile: ProviderProfile,
        retryAfter: Duration? = nil
    ) -> TaskOutcome {
        if response.isError {
            let code = response.errorCode ?? TaskOutcome.LocalCode.errorId(response.errorId)
            let failureClass: FailureClass
            switch profile.classify(errorCode: code) {
            case .providerBusy: failureClass = .transient(.providerBusy, retryAfter: retryAfter)
            case .taskRateLimited: failureClass = .transient(.taskRateLimited, retryAfter: retryAfter ?? profile.minPollInterval)
            case .task: failureClass = .task
            case .unknownTask: failureClass = .unknownTask
            case .account: failureClass = .account
            case .ban: failureClass = .ban
            }
            // errorId is kept as text so any width decodes; one that does not fit an Int is left out.
            return .failed(failureClass, code: code, description: response.errorDescription, errorId: Int(response.errorId))
        }
        switch response.status {
        case .processing:
            return .processing
        case .ready:
            guard let solution = response.solution else {
                return .failed(.transient(.badBody, retryAfter: retryAfter), code: TaskOutcome.LocalCode.badBody,
                               description: "status ready without a solution")
            }
            return .ready(solution: solution, receipt: response.receipt)
        case .other(let text):
            return .failed(.transient(.badBody, retryAfter: retryAfter), code: TaskOutcome.LocalCode.badBody,
                           description: "unknown status '\(text.prefix(64))'")
        case nil:
            return .failed(.transient(.badBody, retryAfter: retryAfter), code: TaskOutcome.LocalCode.badBody,
                           description: "no status and no error")
        }
    }

    /// Parses `Retry-After`: delta-seconds (integer or decimal) or an HTTP-date.
    /// Negative or past values become zero; values are clamped to `maxRetryAfter`.
    public static func parseRetryAfter(_ value: String, now: Date) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(text), seconds.isFinite {
            return clamp(seconds)
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                return clamp(date.timeIntervalSince(now))
            }
        }
        return nil
    }

    private static func clamp(_ seconds: Double) -> Duration {
        let bounded = min(max(seconds, 0), Double(maxRetryAfter.components.seconds))
        return .milliseconds(Int64((bounded * 1000).rounded()))
    }
}

/// What a getBalance call found: the account's balance, or why there is none.
public enum BalanceOutcome: Sendable, Hashable {
    case balance(Double)
    /// Classified as a poll's failure would be (an account error, a transient one, ...).
    case failed(TaskOutcome)
}

extension OutcomeClassifier {
    /// Classifies a getBalance exchange: errors as for getTaskResult, else its `balance`.
    public static func classifyBalance(status: Int, retryAfter: String?, body: [UInt8], profile: ProviderProfile) -> BalanceOutcome {
        guard (200..<300).contains(status), let response = try? TaskResultResponse.decode(body) else {
            return .failed(classify(status: status, retryAfter: retryAfter, body: body, profile: profile))
        }
        if response.isError { return .failed(classify(response, profile: profile)) }
        guard let balance = response.balance else {
            return .failed(.failed(.transient(.badBody, retryAfter: nil), code: TaskOutcome.LocalCode.badBody,
                                   description: "getBalance answer without a balance"))
        }
        return .balance(balance)
    }
}
