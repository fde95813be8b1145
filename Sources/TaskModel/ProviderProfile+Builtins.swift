extension ProviderProfile {
    // Each profile states only what differs from `ProviderProfile.init`'s defaults
    // (1 s minimum, 3 s interval, 120 polls, 5 s first delay, 300 s window).

    /// ez-captcha: the default. UUID task ids; "try again in 3 seconds".
    public static let ezCaptcha = ProviderProfile(name: "ez-captcha", baseURL: "https://api.ez-captcha.com")

    /// capsolver: UUID task ids, `idle` status, drops a result after 120 polls.
    public static let capsolver = ProviderProfile(
        name: "capsolver",
        baseURL: "https://api.capsolver.com",
        maxPolls: 110,
        initialDelay: .seconds(3),
        extraErrorCodes: [
            "ERROR_KEY_DENIED_ACCESS": .account,
            "ERROR_RATE_LIMIT": .providerBusy,
            "ERROR_INVALID_TASK_DATA": .task,
            "ERROR_TASK_TIMEOUT": .task,
        ]
    )

    /// anti-captcha: integer task ids above 2^31, numeric errorId values.
    public static let antiCaptcha = ProviderProfile(
        name: "anti-captcha",
        baseURL: "https://api.anti-captcha.com",
        minPollInterval: .seconds(2),
        extraErrorCodes: [
            "ERROR_NO_SUCH_CAPCHA_ID": .unknownTask,
            "ERROR_TASK_ABSENT": .unknownTask,
            "ERROR_IP_BLOCKED": .ban,
            "ERROR_ACCOUNT_SUSPENDED": .account,
            "ERROR_IP_NOT_ALLOWED": .account,
            "ERROR_TOO_MUCH_REQUESTS": .taskRateLimited,
        ]
    )

    /// capmonster: integer task ids; ERROR_TOO_MUCH_REQUESTS when one task is
    /// polled more than once per 2 s; bans after 120 requests for one task.
    public static let capmonster = ProviderProfile(
        name: "capmonster",
        baseURL: "https://api.capmonster.cloud",
        minPollInterval: .seconds(2),
        maxPolls: 100,
        extraErrorCodes: [
            "ERROR_TOO_MUCH_REQUESTS": .taskRateLimited,
            "ERROR_NO_SUCH_CAPCHA_ID": .unknownTask,
            "ERROR_MAXIMUM_TIME_EXCEED": .task,
            "ERROR_IP_BLOCKED": .ban,
            "ERROR_ACCOUNT_SUSPENDED": .account,
        ]
    )

    /// 2captcha, API v2 (Anti-Captcha-style JSON at api.2captcha.com).
    public static let twoCaptcha = ProviderProfile(
        name: "2captcha",
        baseURL: "https://api.2captcha.com",
        minPollInterval: .seconds(5),
        defaultPollInterval: .seconds(5),
        maxPolls: 60,
        initialDelay: .seconds(10),
        extraErrorCodes: [
            "ERROR_NO_SUCH_CAPCHA_ID": .unknownTask,
            "ERROR_WRONG_CAPTCHA_ID": .unknownTask,
            "ERROR_TOKEN_EXPIRED": .task,
            "ERROR_IP_NOT_ALLOWED": .account,
            "ERROR_IP_BLOCKED": .ban,
            "ERROR_TOO_MUCH_REQUESTS": .taskRateLimited,
        ]
    )

    /// Every built-in profile.
    public static let builtins: [ProviderProfile] = [.ezCaptcha, .capsolver, .antiCaptcha, .capmonster, .twoCaptcha]

    /// The built-in profile for `name`, ignoring case, `-`, `_` and spaces
    /// (`ez-captcha`, `ezcaptcha`, `Anti-Captcha`, `2captcha`, `twocaptcha`, ...).
    public static func named(_ name: String) -> ProviderProfile? {
        func normalize(_ s: String) -> String {
            String(s.lowercased().filter { $0 != "-" && $0 != "_" && $0 != " " && $0 != "." })
        }
        let wanted = normalize(name)
        if wanted == "twocaptcha" { return .twoCaptcha }
        return builtins.first { normalize($0.name) == wanted }
    }

    /// Like `named(_:)`, throwing `TaskAPIError(.unknownProvider)` with the known names.
    public static func lookup(_ name: String) throws -> ProviderProfile {
        guard let profile = named(name) else {
            let known = builtins.map(\.name).joined(separator: ", ")
            throw TaskAPIError(.unknownProvider, "unknown provider '\(name)'; known: \(known)")
        }
        return profile
    }
}
