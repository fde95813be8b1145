/// A provider error the simulator answers with (errorId 1, errorCode, errorDescription).
public struct SimProviderError: Sendable, Hashable {
    public let code: String
    public let description: String
    /// Whether this error counts towards the IP-ban rule (caused by the client).
    public let countsForBan: Bool

    public init(code: String, description: String, countsForBan: Bool) {
        self.code = code
        self.description = description
        self.countsForBan = countsForBan
    }

    public static let taskIdInvalid = SimProviderError(
        code: "ERROR_TASKID_INVALID", description: "Task ID does not exist or is invalid", countsForBan: true)
    public static let keyDoesNotExist = SimProviderError(
        code: "ERROR_KEY_DOES_NOT_EXIST", description: "Account authorization key not found in the system", countsForBan: true)
    public static let zeroBalance = SimProviderError(
        code: "ERROR_ZERO_BALANCE", description: "Account has zero or negative balance", countsForBan: true)
    public static let ipBanned = SimProviderError(
        code: "ERROR_IP_BANNED", description: "Your IP is blocked due to improper use of the API", countsForBan: false)
    public static let tooMuchRequests = SimProviderError(
        code: "ERROR_TOO_MUCH_REQUESTS", description: "Too many requests for this task", countsForBan: true)
    public static let captchaUnsolvable = SimProviderError(
        code: "ERROR_CAPTCHA_UNSOLVABLE", description: "Captcha could not be solved", countsForBan: false)
    public static let serviceUnavailable = SimProviderError(
        code: "ERROR_SERVICE_UNAVALIABLE", description: "Service is temporarily unavailable", countsForBan: false)
}
