/// The class of a provider `errorCode`, as data in a `ProviderProfile`.
public enum ErrorCodeClass: String, Sendable, Hashable, CaseIterable {
    /// Provider overloaded: retry with backoff (global).
    case providerBusy
    /// This task is polled too often: back off this task.
    case taskRateLimited
    /// Terminal for the task.
    case task
    /// The provider does not know the task id (a wrong id, or its result window
    /// closed): terminal for the task, and counted as our error by the error budget.
    case unknownTask
    /// Terminal for every task of the key.
    case account
    /// IP banned: stop all calls for a while.
    case ban

    /// The codes every Anti-Captcha-style provider shares.
    public static let common: [String: ErrorCodeClass] = [
        "ERROR_SERVICE_UNAVALIABLE": .providerBusy, // sic, as ez-captcha and capsolver spell it
        "ERROR_SERVICE_UNAVAILABLE": .providerBusy,
        "ERROR_INTERNAL_SERVER_ERROR": .providerBusy,
        "ERROR_NO_SLOT_AVAILABLE": .providerBusy,
        "ERROR_TOO_MUCH_REQUESTS": .taskRateLimited, // capmonster; harmless to honour everywhere
        "ERROR_IP_BANNED": .ban,
        "ERROR_KEY_DOES_NOT_EXIST": .account,
        "ERROR_KEY_BANNED": .account,
        "ERROR_ZERO_BALANCE": .account,
        "ERROR_TASKID_INVALID": .unknownTask,
        "ERROR_CAPTCHA_UNSOLVABLE": .task,
        "ERROR_TASK_NOT_SUPPORTED": .task,
        "ERROR_REQUIRED_FIELDS": .task,
        "ERROR_RECAPTCHA_INVALID_SITEKEY": .task,
        "INVALID_RECAPTCHA_SITEURL": .task,
    ]
}
